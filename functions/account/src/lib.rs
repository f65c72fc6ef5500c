//! `GET /account`: the resident's account from the billing data;
//! `POST /account/email` asks to change the address (a link goes to the new
//! one), `GET /account/email/confirm?token=...` is that link, and
//! `GET /account/email/cancel?token=...` the "not me" link sent to the old
//! address.

use cabinet::clock;
use cabinet::domain::{AddressForm, BalanceLine, Money};
use cabinet::errors::{ErrorBody, ErrorCode, Field, FieldError};
use cabinet::usecases::account::{AccountError, AccountView, view};
use cabinet::usecases::address::{
    AddressError, Cancelled, EmailChangeError, cancel_email_change, confirm_email_change, request_email_change,
};
use cabinet::usecases::login::session_resident;
use cabinet::web::messages;
use cabinet::web::pages::{AccountPage, MessagePage};
use cabinet::web::routes::{Incoming, Routes};
use cabinet::web::{self, DEVICE_COOKIE, Face, SESSION_COOKIE};
use lambda_http::{Body, RequestExt, Response};
use serde::Serialize;

#[derive(Serialize)]
struct AccountJson {
    account: String,
    full_name: String,
    address: Option<String>,
    /// Rubles, positive when the resident owes: `balance_kopecks` / 100.
    balance: Option<f64>,
    /// The balance in kopecks, exact: for sums and comparisons.
    balance_kopecks: Option<i64>,
    /// The balance as on a bill, e.g. «3 450,67 ₽».
    balance_text: Option<String>,
    data_as_of: Option<String>,
    /// Set when letters to the resident's address do not arrive.
    #[serde(skip_serializing_if = "Option::is_none")]
    email_undeliverable: Option<String>,
}

pub fn routes() -> Routes {
    Routes::new()
        .get("/account", show)
        .post("/account/email", change_email)
        .get("/account/email/confirm", confirm_change)
        .get("/account/email/cancel", cancel_change)
}

fn not_authenticated(face: Face) -> Response<Body> {
    match face {
        Face::Json => web::json(
            401,
            &messages::body(vec![FieldError::general(ErrorCode::NotAuthenticated, "Войдите в личный кабинет.")]),
        ),
        Face::Html => web::redirect("/login"),
    }
}

/// What an address change came to, for JSON clients.
#[derive(Serialize)]
struct Done {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    letter_sent: Option<bool>,
    message: String,
}

/// Done: its JSON, or a page saying it that leads back to the account.
fn done(face: Face, status: u16, heading: &str, done: &Done) -> Response<Body> {
    match face {
        Face::Json => web::json(status, done),
        Face::Html => web::html(status, &MessagePage::new(heading, &done.message, "/account", "Вернуться в кабинет")),
    }
}

/// Refused: the errors, or a page with them that leads back to the account.
fn refused_here(face: Face, heading: &str, body: &ErrorBody) -> Response<Body> {
    web::refuse(face, body, || {
        let text = body.errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join(" ");
        MessagePage::error(heading, &text, "/account", "Вернуться в кабинет")
    })
}

async fn change_email(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let form: AddressForm = match web::read_body(request) {
        Ok(form) => form,
        Err(errors) => return web::errors(face, &errors),
    };
    let resident = match session_resident(services, web::cookie(request, SESSION_COOKIE)).await {
        Ok(Some(resident)) => resident,
        Ok(None) => return not_authenticated(face),
        Err(error) => return web::internal_error(face, &error),
    };
    let base_url = web::base_url(&services.config, request);
    let password = form.password.as_deref().unwrap_or_default();
    let email = form.email.as_deref().unwrap_or_default();
    let device = web::cookie(request, DEVICE_COOKIE);
    match request_email_change(services, &resident, password, email, &base_url, &web::requester(request), device).await
    {
        Ok((masked, sent)) => {
            let message = if sent {
                format!(
                    "Мы отправили ссылку на {masked}. Откройте её, и адрес изменится; до тех пор письма приходят на прежний."
                )
            } else {
                format!(
                    "Письмо на {masked} отправить не удалось. Проверьте адрес и попробуйте ещё раз через несколько минут."
                )
            };
            let answer = Done { status: "confirmation_sent", email: Some(masked), letter_sent: Some(sent), message };
            done(face, 202, "Проверьте почту", &answer)
        }
        Err(AddressError::Refused(errors)) => refused_here(face, "Не получилось", &messages::body(errors)),
        Err(AddressError::RateLimited { retry_after_seconds }) => web::rate_limited(face, retry_after_seconds),
        Err(AddressError::Unexpected(error)) => web::internal_error(face, &error),
    }
}

async fn confirm_change(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let token = request.query_string_parameters().first("token").unwrap_or_default().to_owned();
    let refused = |code, message: &str| {
        refused_here(face, "Ссылка не работает", &messages::body(vec![FieldError::field(Field::Token, code, message)]))
    };
    match confirm_email_change(services, &token, &web::requester(request)).await {
        Ok(masked) => {
            let message = format!("Готово: теперь письма приходят на {masked}. Входить можно и с новым адресом.");
            let answer = Done { status: "email_changed", email: Some(masked), letter_sent: None, message };
            done(face, 200, "Адрес изменён", &answer)
        }
        Err(EmailChangeError::InvalidToken) => refused(
            ErrorCode::InvalidToken,
            "Ссылка недействительна: она уже использована или скопирована не целиком. Если адрес ещё не изменился, запросите смену снова в личном кабинете.",
        ),
        Err(EmailChangeError::Expired) => refused(
            ErrorCode::ExpiredToken,
            "Срок действия ссылки истёк. Запросите смену адреса снова в личном кабинете.",
        ),
        Err(EmailChangeError::Taken) => refused(
            ErrorCode::EmailTaken,
            "Этот e-mail тем временем указали в другом личном кабинете. Укажите другой адрес.",
        ),
        Err(EmailChangeError::Unexpected(error)) => web::internal_error(face, &error),
    }
}

async fn cancel_change(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let token = request.query_string_parameters().first("token").unwrap_or_default().to_owned();
    let refused = |code, message: &str| {
        refused_here(face, "Ссылка не работает", &messages::body(vec![FieldError::field(Field::Token, code, message)]))
    };
    match cancel_email_change(services, &token, &web::requester(request)).await {
        Ok(cancelled) => {
            let message = match cancelled {
                Cancelled::Pending => {
                    "Смена адреса отменена: запросы смены адреса и ссылки для смены пароля больше не действуют, все сеансы входа завершены. Ваш пароль знает кто-то ещё — задайте новый через «Забыли пароль?» на странице входа."
                }
                Cancelled::Reverted => {
                    "Адрес уже успели сменить, и мы вернули прежний: письма снова приходят на этот адрес, ссылки для смены пароля больше не действуют, все сеансы входа завершены. Ваш пароль знает кто-то ещё — задайте новый через «Забыли пароль?» на странице входа: письмо придёт сюда."
                }
            };
            let answer =
                Done { status: "email_change_cancelled", email: None, letter_sent: None, message: message.to_owned() };
            done(face, 200, "Смена адреса отменена", &answer)
        }
        Err(EmailChangeError::Expired) => refused(
            ErrorCode::ExpiredToken,
            "Срок действия ссылки истёк. Если адрес сменили не вы, обратитесь в офис управляющей компании.",
        ),
        Err(EmailChangeError::Taken) => refused(
            ErrorCode::InvalidToken,
            "Прежний адрес уже занят другим кабинетом, поэтому вернуть его нельзя. Все сеансы входа завершены; обратитесь в офис управляющей компании, чтобы восстановить доступ.",
        ),
        Err(EmailChangeError::InvalidToken) => {
            refused(ErrorCode::InvalidToken, "Ссылка недействительна: она уже использована или скопирована не целиком.")
        }
        Err(EmailChangeError::Unexpected(error)) => web::internal_error(face, &error),
    }
}

async fn show(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    match view(services, web::cookie(request, SESSION_COOKIE)).await {
        Ok(account) => answer(face, account),
        Err(AccountError::NotAuthenticated) => not_authenticated(face),
        Err(AccountError::Unexpected(error)) => web::internal_error(face, &error),
    }
}

fn answer(face: Face, view: AccountView) -> Response<Body> {
    let undeliverable = view.undeliverable.as_ref().map(|_| messages::notices_will_not_arrive(&view.masked_email));
    match face {
        Face::Json => web::json(
            200,
            &AccountJson {
                account: view.account.to_string(),
                full_name: view.full_name,
                address: view.address,
                balance: view.balance.map(Money::rubles),
                balance_kopecks: view.balance.map(|m| m.0),
                balance_text: view.balance.map(|m| m.to_string()),
                data_as_of: view.data_as_of.map(clock::rfc3339),
                email_undeliverable: undeliverable.clone(),
            },
        ),
        Face::Html => web::html(
            200,
            &AccountPage {
                account: view.account.to_string(),
                full_name: view.full_name,
                address: view.address,
                balance: BalanceLine::of(view.balance),
                data_as_of: view.data_as_of.map(clock::moscow),
                undeliverable,
                masked_email: view.masked_email,
            },
        ),
    }
}
