//! `GET /confirm?token=...`: the link from the confirmation letter (also the
//! page a resident can return to for the stage and ready time);
//! `POST /confirm/resend`: the letter again.

use cabinet::Services;
use cabinet::clock;
use cabinet::domain::AddressForm;
use cabinet::domain::ResidentStatus;
use cabinet::errors::{ErrorBody, ErrorCode, Field, FieldError};
use cabinet::usecases::address::{AddressError, resend};
use cabinet::usecases::confirm::{ConfirmError, Confirmed, confirm};
use cabinet::web::pages::{ConfirmedPage, MessagePage};
use cabinet::web::{self, Face};
use lambda_http::http::Method;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

#[derive(Serialize)]
struct ConfirmedJson {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ready_at: Option<String>,
    already_confirmed: bool,
}

pub async fn handle(services: &Services, request: Request) -> Response<Body> {
    let face = match web::admit(&services.config, &request) {
        Ok(face) => face,
        Err(refused) => return refused,
    };
    if request.method() == Method::POST && request.uri().path() == "/confirm/resend" {
        return resend_letter(services, &request, face).await;
    }
    if request.method() != Method::GET {
        return web::method_not_allowed(face);
    }
    let token = request.query_string_parameters().first("token").unwrap_or_default().to_owned();
    let base_url = web::base_url(&services.config, &request);
    match confirm(services, &token, &base_url, &web::requester(&request)).await {
        Ok(Confirmed::Now { ready_at }) => answer(face, ResidentStatus::AwaitingIdentification, Some(ready_at), false),
        Ok(Confirmed::Already { status, ready_at }) => answer(face, status, ready_at, true),
        Err(ConfirmError::InvalidToken) => web::errors(
            face,
            &ErrorBody::new(vec![FieldError::field(
                Field::Token,
                ErrorCode::InvalidToken,
                "Ссылка недействительна: возможно, она скопирована не целиком или мы уже прислали вам более новое письмо. Откройте ссылку из последнего письма или войдите с паролем — мы пришлём новую.",
            )]),
        ),
        Err(ConfirmError::Expired) => web::errors(
            face,
            &ErrorBody::new(vec![FieldError::field(
                Field::Token,
                ErrorCode::ExpiredToken,
                "Срок действия ссылки истёк. Войдите с e-mail или номером лицевого счёта и паролем — мы пришлём новую ссылку.",
            )]),
        ),
        Err(ConfirmError::Unexpected(error)) => web::internal_error(face, &error),
    }
}

/// `POST /confirm/resend`: the letter again, without telling whether the
/// login exists.
async fn resend_letter(services: &Services, request: &Request, face: Face) -> Response<Body> {
    let form: AddressForm = match web::read_body(request) {
        Ok(form) => form,
        Err(errors) => return web::errors(face, &errors),
    };
    let base_url = web::base_url(&services.config, request);
    let message = "Если этот адрес или лицевой счёт зарегистрирован и ещё не подтверждён, мы отправили новое письмо со ссылкой. Старая ссылка больше не действует. Проверьте и папку «Спам».";
    match resend(services, form.login.as_deref().unwrap_or_default(), &base_url, &web::requester(request)).await {
        Ok(()) => match face {
            Face::Json => web::json(202, &serde_json::json!({"status": "resent_if_unconfirmed", "message": message})),
            Face::Html => web::html(202, &MessagePage::new("Письмо отправлено", message, "/login", "Перейти ко входу")),
        },
        Err(AddressError::Refused(errors)) => web::errors(face, &ErrorBody::new(errors)),
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
