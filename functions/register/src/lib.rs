//! `GET /register` shows the form; `POST /register` registers a resident;
//! `GET /register/status` shows the registering browser where its
//! registration is; `POST /email` corrects the address before it is
//! confirmed.

use cabinet::clock;
use cabinet::domain::{AddressForm, NewRegistration, RegistrationForm, ResidentStatus};
use cabinet::errors::{ErrorBody, ErrorCode, FieldError};
use cabinet::usecases::address::{AddressError, change_email};
use cabinet::usecases::register::{RegisterError, Registered, register, registration_status};
use cabinet::web::messages;
use cabinet::web::pages::{CheckMailPage, MessagePage, RegisterPage, StatusPage};
use cabinet::web::routes::{Incoming, Routes};
use cabinet::web::{self, Face, REGISTRATION_COOKIE};
use lambda_http::{Body, Response};
use serde::Serialize;

#[derive(Serialize)]
struct RegisteredJson {
    status: &'static str,
    email: String,
    letter_sent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    suggestion: Option<String>,
    message: &'static str,
}

pub fn routes() -> Routes {
    Routes::new()
        .get("/register", |_: Incoming| async { web::html(200, &RegisterPage::default()) })
        .post("/register", submit)
        .get("/register/status", status)
        .post("/email", change)
}

async fn submit(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let form: RegistrationForm = match web::read_form(request) {
        Ok((form, problems)) if problems.is_empty() => form,
        // The form again, with every field's error: those of the body and
        // those of the values themselves.
        Ok((form, mut problems)) => {
            let others = NewRegistration::parse(&form).err().unwrap_or_default();
            let named: Vec<_> = problems.iter().map(|p| p.field).collect();
            problems.extend(others.into_iter().filter(|e| !named.contains(&e.field)));
            return refused(face, &form, &messages::body(problems));
        }
        Err(errors) => return web::errors(face, &errors),
    };
    let base_url = web::base_url(&services.config, request);
    match register(services, &form, &base_url, &web::requester(request)).await {
        Ok(registered) => answer(face, &registered),
        Err(RegisterError::RateLimited(limited)) => web::rate_limited(face, limited.retry_after_seconds),
        Err(RegisterError::Refused(errors)) => refused(face, &form, &messages::body(errors)),
        Err(RegisterError::Paused { retry_after_seconds, error }) => {
            web::with_retry_after(refused(face, &form, &messages::body(vec![error])), retry_after_seconds)
        }
        // The form comes back with what was typed (passwords aside).
        Err(RegisterError::Unexpected(error)) if error.is_transient() && face == Face::Html => {
            web::log_failure(&error);
            let page = refused(face, &form, &web::unavailable_body());
            web::with_retry_after(page, web::UNAVAILABLE_RETRY_AFTER_SECONDS)
        }
        Err(RegisterError::Unexpected(error)) => web::internal_error(face, &error),
    }
}

/// The form again with its errors, or the errors as JSON.
fn refused(face: Face, form: &RegistrationForm, body: &ErrorBody) -> Response<Body> {
    web::refuse(face, body, || RegisterPage::with_errors(form, body))
}

/// `POST /email`: corrects the address of an unconfirmed registration.
async fn change(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let form: AddressForm = match web::read_body(request) {
        Ok(form) => form,
        Err(errors) => return web::errors(face, &errors),
    };
    let base_url = web::base_url(&services.config, request);
    let login = form.login.as_deref().unwrap_or_default();
    let password = form.password.as_deref().unwrap_or_default();
    let email = form.email.as_deref().unwrap_or_default();
    match change_email(services, login, password, email, &base_url, &web::requester(request)).await {
        Ok(changed) => {
            let suggestion = changed.suggestion.as_ref().map(ToString::to_string);
            match face {
                Face::Json => web::json(
                    200,
                    &RegisteredJson {
                        status: "awaiting_email_confirmation",
                        email: changed.masked_email,
                        letter_sent: changed.letter_sent,
                        suggestion,
                        message: match (changed.changed, changed.letter_sent) {
                            (true, true) => {
                                "Адрес изменён, письмо со ссылкой отправлено на новый адрес. Ссылки, отправленные на прежний адрес, больше не действуют."
                            }
                            (true, false) => {
                                "Адрес изменён, но письмо на него отправить не удалось. Ссылки, отправленные на прежний адрес, больше не действуют. Попробуйте отправить письмо ещё раз позже."
                            }
                            (false, true) => {
                                "Это тот же адрес, что и был: мы отправили на него письмо ещё раз. Ссылки из прежних писем тоже действуют."
                            }
                            (false, false) => {
                                "Это тот же адрес, что и был. Письмо на него сейчас отправить не удалось — попробуйте позже; ссылки из прежних писем действуют."
                            }
                        },
                    },
                ),
                Face::Html => web::html(
                    200,
                    &CheckMailPage {
                        masked_email: changed.masked_email,
                        letter_sent: changed.letter_sent,
                        address_changed: changed.changed,
                        suggestion,
                        login: email.to_owned(),
                    },
                ),
            }
        }
        Err(AddressError::Refused(errors)) => web::errors(face, &messages::body(errors)),
        Err(AddressError::RateLimited { retry_after_seconds }) => web::rate_limited(face, retry_after_seconds),
        Err(AddressError::Unexpected(error)) => web::internal_error(face, &error),
    }
}

#[derive(Serialize)]
struct StatusJson {
    account: String,
    status: &'static str,
    email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_undeliverable: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ready_at: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    delayed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejection: Option<&'static str>,
}

/// `GET /register/status`: the stage of this browser's registration.
async fn status(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let base_url = web::base_url(&services.config, request);
    let found = match registration_status(services, web::cookie(request, REGISTRATION_COOKIE), &base_url).await {
        Ok(found) => found,
        Err(error) => return web::internal_error(face, &error),
    };
    let Some(found) = found else {
        let message = "Состояние регистрации видно в том браузере, где вы регистрировались, в течение суток. Войдите с e-mail или номером лицевого счёта и паролем — вход покажет, на каком вы этапе.";
        return match face {
            Face::Json => {
                web::json(401, &messages::body(vec![FieldError::general(ErrorCode::NotAuthenticated, message)]))
            }
            Face::Html => web::html(404, &MessagePage::error("Регистрация не найдена", message, "/login", "Войти")),
        };
    };
    let stage = match found.status {
        ResidentStatus::AwaitingEmailConfirmation => 1,
        ResidentStatus::AwaitingIdentification | ResidentStatus::Rejected => 2,
        ResidentStatus::Active => 3,
    };
    // A time long past is no promise: when identification is delayed, it is not shown.
    let ready_at = found.ready_at.filter(|_| found.status == ResidentStatus::AwaitingIdentification && !found.delayed);
    let undeliverable = found.undeliverable.as_ref().map(|u| messages::undeliverable(u, &found.masked_email));
    match face {
        Face::Json => web::json(
            200,
            &StatusJson {
                account: found.account.to_string(),
                status: found.status.as_str(),
                email: found.masked_email,
                email_undeliverable: undeliverable.clone(),
                ready_at: ready_at.map(clock::rfc3339),
                delayed: found.delayed,
                rejection: found.rejection.map(messages::rejection),
            },
        ),
        Face::Html => web::html(
            200,
            &StatusPage {
                account: found.account.to_string(),
                masked_email: found.masked_email,
                stage,
                undeliverable,
                ready_at: ready_at.map(clock::moscow),
                ready_at_iso: ready_at.map(clock::rfc3339).unwrap_or_default(),
                delayed: found.delayed,
                rejection: found.rejection.map(|r| messages::rejection(r).to_owned()),
            },
        ),
    }
}

fn answer(face: Face, registered: &Registered) -> Response<Body> {
    let cookie = web::registration_cookie(registered.status_token.expose(), registered.status_valid_for.as_secs());
    web::with_cookie(answer_body(face, registered), &cookie)
}

fn answer_body(face: Face, registered: &Registered) -> Response<Body> {
    let suggestion = registered.email_suggestion.as_ref().map(ToString::to_string);
    match face {
        Face::Json => web::json(
            201,
            &RegisteredJson {
                status: "awaiting_email_confirmation",
                email: registered.email.masked(),
                letter_sent: registered.letter_sent,
                suggestion,
                message: if registered.letter_sent {
                    "Мы отправили письмо со ссылкой для подтверждения e-mail."
                } else {
                    "Регистрация сохранена, но письмо отправить не удалось. Войдите с паролем — мы отправим его ещё раз."
                },
            },
        ),
        Face::Html => web::html(
            201,
            &CheckMailPage {
                masked_email: registered.email.masked(),
                letter_sent: registered.letter_sent,
                address_changed: false,
                suggestion,
                login: registered.email.to_string(),
            },
        ),
    }
}
