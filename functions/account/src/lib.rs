//! `GET /account`: the resident's account from the billing data;
//! `POST /account/email` asks to change the address (a link goes to the new
//! one), `GET /account/email/confirm?token=...` is that link, and
//! `GET /account/email/cancel?token=...` the "not me" link sent to the old
//! address.

use cabinet::clock;
use cabinet::domain::{AddressForm, BalanceLine};
use cabinet::errors::{ErrorBody, ErrorCode, Field, FieldError};
use cabinet::usecases::account::{AccountError, AccountView, view};
use cabinet::usecases::address::{
    AddressError, Cancelled, EmailChangeError, cancel_email_change, confirm_email_change, request_email_change,
};
use cabinet::usecases::login::session_resident;
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
    /// Rubles, positive when the resident owes.
    balance: Option<f64>,
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
            &ErrorBody::new(vec![FieldError::general(ErrorCode::NotAuthenticated, "Войдите в личный кабинет.")]),
        ),
        Face::Html => web::redirect("/login"),
    }
}

/// An answer on a page that leads back to the account.
fn back_to_account(
    face: Face,
    status: u16,
    heading: &str,
    body: &ErrorBody,
    json: serde_json::Value,
) -> Response<Body> {
    match face {
        Face::Json if body.errors.is_empty() => web::json(status, &json),
        Face::Json => web::json(status, body),
        Face::Html => {
            let text = if body.errors.is_empty() {
                json.get("message").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned()
            } else {
                body.errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join(" ")
            };
            let page = if body.errors.is_empty() { MessagePage::new } else { MessagePage::error };
            web::html(status, &page(heading, &text, "/account", "Вернуться в кабинет"))
        }
    }
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
            let json = serde_json::json!({"status": "confirmation_sent", "email": masked, "letter_sent": sent, "message": message});
            back_to_account(face, 202, "Проверьте почту", &ErrorBody::new(Vec::new()), json)
        }
        Err(AddressError::Refused(errors)) => {
            let body = ErrorBody::new(errors);
            back_to_account(face, body.status(), "Не получилось", &body, serde_json::Value::Null)
        }
        Err(AddressError::RateLimited { retry_after_seconds }) => web::rate_limited(face, retry_after_seconds),
        Err(AddressError::Unexpected(error)) => web::internal_error(face, &error),
    }
}

async fn confirm_change(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let token = request.query_string_parameters().first("token").unwrap_or_default().to_owned();
    let refused = |code, message: &str| {
        let body = ErrorBody::new(vec![FieldError::field(Field::Token, code, message)]);
        back_to_account(face, body.status(), "Ссылка не работает", &body, serde_json::Value::Null)
    };
    match confirm_email_change(services, &token, &web::requester(request)).await {
        Ok(masked) => {
            let message = format!("Готово: теперь письма приходят на {masked}. Входить можно и с новым адресом.");
            let json = serde_json::json!({"status": "email_changed", "email": masked, "message": message});
            back_to_account(face, 200, "Адрес изменён", &ErrorBody::new(Vec::new()), json)
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
        let body = ErrorBody::new(vec![FieldError::field(Field::Token, code, message)]);
        back_to_account(face, body.status(), "Ссылка не работает", &body, serde_json::Value::Null)
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
            let json = serde_json::json!({"status": "email_change_cancelled", "message": message});
            back_to_account(face, 200, "Смена адреса отменена", &ErrorBody::new(Vec::new()), json)
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
    match face {
        Face::Json => web::json(
            200,
            &AccountJson {
                account: view.account.to_string(),
                full_name: view.full_name,
                address: view.address,
                balance: view.balance.map(|m| m.0 as f64 / 100.0),
                data_as_of: view.data_as_of.map(clock::rfc3339),
                email_undeliverable: view.undeliverable.clone(),
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
                undeliverable: view.undeliverable,
                masked_email: view.masked_email,
            },
        ),
    }
}
