//! `GET /confirm?token=...&account=...`: the link from the confirmation letter (also the
//! page a resident can return to for the stage and ready time);
//! `POST /confirm/resend`: the letter again.

use cabinet::domain::AddressForm;
use cabinet::domain::ResidentStatus;
use cabinet::errors::{ErrorCode, Field, FieldError};
use cabinet::usecases::address::{AddressError, resend};
use cabinet::usecases::confirm::{ConfirmError, Confirmed, confirm};
use cabinet::web::messages;
use cabinet::web::pages::{ConfirmedPage, MessagePage};
use cabinet::web::routes::{Incoming, Routes};
use cabinet::web::{self, Face};
use cabinet::{clock, letters};
use lambda_http::{Body, RequestExt, Response};
use serde::Serialize;

#[derive(Serialize)]
struct ConfirmedJson {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ready_at: Option<String>,
    already_confirmed: bool,
}

pub fn routes() -> Routes {
    Routes::new().get("/confirm", confirm_link).post("/confirm/resend", resend_letter)
}

async fn confirm_link(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let query = request.query_string_parameters();
    let (token, account) = (query.first("token").unwrap_or_default(), query.first("account"));
    let base_url = web::base_url(&services.config, request);
    match confirm(services, token, account, &base_url, &web::requester(request)).await {
        Ok(Confirmed::Now { ready_at }) => answer(face, ResidentStatus::AwaitingIdentification, Some(ready_at), false),
        Ok(Confirmed::Already { status, ready_at }) => answer(face, status, ready_at, true),
        Err(ConfirmError::InvalidToken) => link_refused(
            face,
            ErrorCode::InvalidToken,
            "Ссылка недействительна: скорее всего, она скопирована не целиком. Откройте её прямо из письма, нажав на неё, или войдите с e-mail или номером лицевого счёта и паролем — мы пришлём новую.",
            ("Ссылка не сработала", LOGIN_FOR_A_NEW_LINK),
        ),
        Err(ConfirmError::Expired) => link_refused(
            face,
            ErrorCode::ExpiredToken,
            &format!(
                "Срок действия ссылки истёк: она действует {} после отправки письма. Войдите с e-mail или номером лицевого счёта и паролем — мы пришлём новую ссылку.",
                letters::human_duration(services.config.confirmation_token_ttl)
            ),
            ("Срок действия ссылки истёк", LOGIN_FOR_A_NEW_LINK),
        ),
        Err(ConfirmError::AddressChanged { masked_email, confirmed }) => {
            let next = if confirmed {
                format!("Адрес {masked_email} уже подтверждён: войдите с e-mail или номером лицевого счёта и паролем.")
            } else {
                format!(
                    "Откройте ссылку из последнего письма, отправленного на {masked_email}, или войдите с паролем — мы пришлём новую."
                )
            };
            link_refused(
                face,
                ErrorCode::AddressChanged,
                &format!(
                    "Эта ссылка из письма, отправленного до смены адреса регистрации, и больше не действует. {next}"
                ),
                ("Адрес регистрации изменён", LOGIN),
            )
        }
        Err(ConfirmError::RegistrationGone { registered_again: false }) => link_refused(
            face,
            ErrorCode::RegistrationExpired,
            "Регистрация, к которой относится эта ссылка, не была подтверждена вовремя и удалена. Зарегистрируйтесь заново — ссылку для подтверждения пришлём в новом письме.",
            ("Регистрация удалена", ("/register", "Зарегистрироваться заново")),
        ),
        Err(ConfirmError::RegistrationGone { registered_again: true }) => link_refused(
            face,
            ErrorCode::RegistrationExpired,
            "Регистрация, к которой относится эта ссылка, не была подтверждена вовремя и удалена, а лицевой счёт с тех пор зарегистрировали заново. Если это сделали вы, войдите с паролем новой регистрации; если не вы — обратитесь в офис управляющей компании.",
            ("Регистрация удалена", LOGIN),
        ),
        Err(ConfirmError::Unexpected(error)) => web::internal_error(face, &error),
    }
}

const LOGIN: (&str, &str) = ("/login", "Войти");
const LOGIN_FOR_A_NEW_LINK: (&str, &str) = ("/login", "Войти и получить новую ссылку");

/// A link that does not work: why, and the one next step (a page heading,
/// and where its one button leads).
fn link_refused(face: Face, code: ErrorCode, message: &str, page: (&str, (&str, &str))) -> Response<Body> {
    let error = FieldError::field(Field::Token, code, message);
    match face {
        Face::Json => web::errors(face, &messages::body(vec![error])),
        Face::Html => {
            let (heading, (href, action)) = page;
            web::html(messages::status_of(error.code), &MessagePage::error(heading, message, href, action))
        }
    }
}

/// `POST /confirm/resend`: the letter again, without telling whether the
/// login exists.
async fn resend_letter(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let form: AddressForm = match web::read_body(request) {
        Ok(form) => form,
        Err(errors) => return web::errors(face, &errors),
    };
    let base_url = web::base_url(&services.config, request);
    let message = "Если этот адрес или лицевой счёт зарегистрирован и ещё не подтверждён, мы отправим на него новое письмо со ссылкой. Ссылки из писем, отправленных раньше, тоже действуют. Проверьте и папку «Спам».";
    match resend(services, form.login.as_deref().unwrap_or_default(), &base_url, &web::requester(request)).await {
        Ok(()) => match face {
            Face::Json => web::json(202, &serde_json::json!({"status": "resent_if_unconfirmed", "message": message})),
            Face::Html => web::html(202, &MessagePage::new("Запрос принят", message, "/login", "Перейти ко входу")),
        },
        Err(AddressError::Refused(errors)) => web::errors(face, &messages::body(errors)),
        Err(AddressError::RateLimited { retry_after_seconds }) => web::rate_limited(face, retry_after_seconds),
        Err(AddressError::Unexpected(error)) => web::internal_error(face, &error),
    }
}

fn answer(face: Face, status: ResidentStatus, ready_at: Option<time::OffsetDateTime>, already: bool) -> Response<Body> {
    match face {
        Face::Json => web::json(
            200,
            &ConfirmedJson {
                status: status.as_str(),
                ready_at: ready_at.map(clock::rfc3339),
                already_confirmed: already,
            },
        ),
        Face::Html => {
            let (heading, text) = match (status, already) {
                (ResidentStatus::AwaitingIdentification, false) => (
                    "E-mail подтверждён",
                    "Спасибо! Теперь мы один раз сверим ваши данные с данными начислений ООО «Потенциал». Ничего делать не нужно.",
                ),
                (ResidentStatus::AwaitingIdentification, true) => {
                    ("E-mail уже подтверждён", "Вы уже подтвердили адрес. Мы сверяем ваши данные с данными начислений.")
                }
                (ResidentStatus::Active, _) => ("E-mail уже подтверждён", "Личный кабинет открыт — можно входить."),
                (ResidentStatus::Rejected, _) => (
                    "E-mail уже подтверждён",
                    "Сверка данных не прошла. Войдите, чтобы узнать причину, или обратитесь в офис управляющей компании.",
                ),
                (ResidentStatus::AwaitingEmailConfirmation, _) => {
                    ("Подтверждение e-mail", "Откройте ссылку из последнего письма.")
                }
            };
            let show_ready = status == ResidentStatus::AwaitingIdentification;
            web::html(
                200,
                &ConfirmedPage {
                    heading: heading.to_owned(),
                    text: text.to_owned(),
                    ready_at: ready_at.filter(|_| show_ready).map(clock::moscow),
                    ready_at_iso: ready_at.map(clock::rfc3339).unwrap_or_default(),
                    stage: if status == ResidentStatus::Active { 3 } else { 2 },
                },
            )
        }
    }
}
