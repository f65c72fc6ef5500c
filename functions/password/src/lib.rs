//! "Забыли пароль?": `GET /password/forgot` shows the form, `POST
//! /password/forgot` sends a reset link; `GET /password/reset?token=...`
//! shows the new password form, `POST /password/reset` sets it.

use cabinet::Services;
use cabinet::domain::{AddressForm, ResetForm};
use cabinet::errors::{ErrorCode, Field, FieldError};
use cabinet::letters::human_duration;
use cabinet::usecases::password::{ResetError, forgot, reset, reset_target};
use cabinet::web::messages;
use cabinet::web::pages::{ForgotPage, MessagePage, ResetPage};
use cabinet::web::routes::{Incoming, Routes};
use cabinet::web::{self, DEVICE_COOKIE, Face};
use lambda_http::{Body, RequestExt, Response};

const SENT: &str = "Если этот e-mail или лицевой счёт зарегистрирован и адрес подтверждён, мы отправили на него письмо со ссылкой для смены пароля. Проверьте и папку «Спам». Если письмо не пришло за 10 минут, проверьте, с каким адресом или номером счёта вы регистрировались.";

pub fn routes() -> Routes {
    Routes::new()
        .get("/password/forgot", show_forgot_form)
        .post("/password/forgot", request_link)
        .get("/password/reset", show_reset_form)
        .post("/password/reset", set_password)
}

async fn show_forgot_form(incoming: Incoming) -> Response<Body> {
    web::html(200, &ForgotPage { valid_for: valid_for(&incoming.state), ..ForgotPage::default() })
}

fn valid_for(services: &Services) -> String {
    human_duration(services.config.password_reset_ttl)
}

async fn request_link(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let form: AddressForm = match web::read_body(request) {
        Ok(form) => form,
        Err(errors) => return web::errors(face, &errors),
    };
    let login = form.login.unwrap_or_default();
    let base_url = web::base_url(&services.config, request);
    let device = web::cookie(request, DEVICE_COOKIE);
    match forgot(services, &login, &base_url, &web::requester(request), device).await {
        Ok(()) => match face {
            Face::Json => web::json(202, &serde_json::json!({"status": "sent_if_registered", "message": SENT})),
            Face::Html => web::html(202, &MessagePage::new("Проверьте почту", SENT, "/login", "Перейти ко входу")),
        },
        Err(error) => refusal(services, face, error, Some(login)),
    }
}

async fn show_reset_form(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let token = request.query_string_parameters().first("token").unwrap_or_default().to_owned();
    match reset_target(services, &token).await {
        Ok(resident) => match face {
            Face::Json => web::json(200, &serde_json::json!({"status": "valid", "account": resident.account.as_str()})),
            Face::Html => {
                web::html(200, &ResetPage { token, account: resident.account.to_string(), ..ResetPage::default() })
            }
        },
        Err(error) => refusal(services, face, error, None),
    }
}

async fn set_password(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let form: ResetForm = match web::read_body(request) {
        Ok(form) => form,
        Err(errors) => return web::errors(face, &errors),
    };
    let token = form.token.clone().unwrap_or_default();
    let base_url = web::base_url(&services.config, request);
    let requester = web::requester(request);
    let outcome =
        reset(services, &token, form.password.as_deref(), form.password_confirm.as_deref(), &base_url, &requester)
            .await;
    match outcome {
        Ok(_) => {
            let message = "Пароль изменён. Все открытые сеансы входа завершены; войдите с новым паролем.";
            let response = match face {
                Face::Json => web::json(200, &serde_json::json!({"status": "password_changed", "message": message})),
                Face::Html => web::html(200, &MessagePage::new("Пароль изменён", message, "/login", "Войти")),
            };
            // This browser's session, if any, ended with the others.
            web::with_cookie(response, &web::expired_session_cookie())
        }
        Err(ResetError::Refused(errors)) => {
            let body = messages::body(errors);
            match face {
                Face::Json => web::json(messages::status(&body), &body),
                Face::Html => {
                    let account =
                        reset_target(services, &token).await.map(|r| r.account.to_string()).unwrap_or_default();
                    web::html(messages::status(&body), &ResetPage::refused(token, account, &body))
                }
            }
        }
        Err(error) => refusal(services, face, error, None),
    }
}

/// The answer for everything but success and a bad new password.
fn refusal(services: &Services, face: Face, error: ResetError, login: Option<String>) -> Response<Body> {
    let link_problem = |code, message: &str| {
        let body = messages::body(vec![FieldError::field(Field::Token, code, message)]);
        web::refuse(face, &body, || {
            MessagePage::error("Ссылка не работает", message, "/password/forgot", "Запросить новую ссылку")
        })
    };
    match error {
        ResetError::InvalidToken => link_problem(
            ErrorCode::InvalidToken,
            "Ссылка для смены пароля недействительна: она уже использована, скопирована не целиком или мы прислали более новую. Запросите новую ссылку.",
        ),
        ResetError::Expired => link_problem(
            ErrorCode::ExpiredToken,
            "Срок действия ссылки для смены пароля истёк. Запросите новую ссылку — она придёт на ваш e-mail.",
        ),
        ResetError::RateLimited(limited) => web::rate_limited(face, limited.retry_after_seconds),
        ResetError::Refused(errors) => {
            let body = messages::body(errors);
            web::refuse(face, &body, || ForgotPage::refused(login.unwrap_or_default(), &body, valid_for(services)))
        }
        ResetError::Unexpected(error) => web::internal_error(face, &error),
    }
}
