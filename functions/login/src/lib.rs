//! `GET /login` shows the form, `POST /login` logs in, `POST /logout` ends
//! the session; `GET /` leads to the login page.

use cabinet::clock;
use cabinet::domain::LoginForm;
use cabinet::errors::{ErrorBody, ErrorCode, Field, FieldError};
use cabinet::usecases::login::{DEVICE_LIFETIME, LoginError, login, logout};
use cabinet::web::messages;
use cabinet::web::pages::LoginPage;
use cabinet::web::routes::{Incoming, Routes};
use cabinet::web::{self, DEVICE_COOKIE, Face, SESSION_COOKIE};
use lambda_http::{Body, Response};

pub fn routes() -> Routes {
    Routes::new()
        .get("/", |_: Incoming| async { web::redirect("/login") })
        .get("/login", |_: Incoming| async { web::html(200, &LoginPage::default()) })
        .post("/login", submit)
        .post("/logout", end_session)
}

async fn submit(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let form: LoginForm = match web::read_form(request) {
        Ok((form, problems)) if problems.is_empty() => form,
        Ok((form, problems)) => {
            let body = messages::body(problems);
            return web::refuse(face, &body, || LoginPage::refused(form.login.unwrap_or_default(), &body));
        }
        Err(errors) => return web::errors(face, &errors),
    };
    let base_url = web::base_url(&services.config, request);
    let previous = web::cookie(request, SESSION_COOKIE);
    let device = web::cookie(request, DEVICE_COOKIE);
    let error = match login(services, &form, &base_url, &web::requester(request), previous, device).await {
        Ok(session) => {
            let max_age = i64::try_from(session.lifetime.as_secs()).unwrap_or(i64::MAX);
            let cookie = web::session_cookie(session.token.expose(), max_age);
            let response = match face {
                Face::Json => web::json(200, &serde_json::json!({"status": "active"})),
                Face::Html => web::redirect("/account"),
            };
            let response = web::with_cookie(response, &cookie);
            return match &session.device {
                Some(device) => {
                    web::with_cookie(response, &web::device_cookie(device.expose(), DEVICE_LIFETIME.as_secs()))
                }
                None => response,
            };
        }
        Err(LoginError::Unexpected(error)) => return web::internal_error(face, &error),
        Err(LoginError::RateLimited(limited)) => return web::rate_limited(face, limited.retry_after_seconds),
        Err(error) => error,
    };
    let body = refusal(&error);
    match face {
        Face::Json => web::json(messages::status(&body), &body),
        Face::Html => {
            let login = form.login.unwrap_or_default();
            let page = match error {
                // Not an error: the cabinet opens at the time said.
                LoginError::IdentificationPending { .. } => {
                    LoginPage { login, notice: body.errors.first().map(|e| e.message.clone()), ..LoginPage::default() }
                }
                _ => LoginPage {
                    unconfirmed: matches!(error, LoginError::EmailNotConfirmed { .. }),
                    undeliverable: matches!(error, LoginError::EmailNotConfirmed { undeliverable: Some(_), .. }),
                    ..LoginPage::refused(login, &body)
                },
            };
            web::html(messages::status(&body), &page)
        }
    }
}

/// The answer for each refusal; the same one for an unknown login and a
/// wrong password.
fn refusal(error: &LoginError) -> ErrorBody {
    match error {
        LoginError::InvalidCredentials | LoginError::RateLimited(_) | LoginError::Unexpected(_) => {
            messages::body(vec![FieldError::field(
                Field::Login,
                ErrorCode::InvalidCredentials,
                "Неверный e-mail, номер лицевого счёта или пароль. Проверьте раскладку клавиатуры и Caps Lock.",
            )])
        }
        LoginError::EmailNotConfirmed { masked_email, letter_sent, undeliverable } => {
            let message = if let Some(undeliverable) = undeliverable {
                messages::undeliverable(undeliverable, masked_email)
            } else if *letter_sent {
                format!(
                    "Адрес {masked_email} ещё не подтверждён. Мы отправили новое письмо со ссылкой — откройте его (проверьте и папку «Спам»). Ссылки из прежних писем тоже действуют."
                )
            } else {
                format!(
                    "Адрес {masked_email} ещё не подтверждён, а новое письмо сейчас отправить не удалось. Попробуйте войти ещё раз позже; ссылки из писем, отправленных раньше, действуют."
                )
            };
            let mut body = messages::body(vec![FieldError::general(ErrorCode::EmailNotConfirmed, message)]);
            body.email = Some(masked_email.clone());
            body
        }
        LoginError::IdentificationPending { ready_at, delayed } => {
            let message = match ready_at {
                _ if *delayed => "E-mail подтверждён, но сверка данных задерживается из-за временной неполадки на нашей стороне. Она завершится сама, как только неполадка пройдёт, и мы пришлём письмо. Попробуйте войти через несколько минут.".to_owned(),
                Some(at) if *at > clock::now() => format!(
                    "E-mail подтверждён, мы сверяем ваши данные с данными начислений. Личный кабинет откроется {}.",
                    clock::moscow(*at)
                ),
                _ => "E-mail подтверждён, сверка данных завершается — попробуйте войти через минуту.".to_owned(),
            };
            let mut body = messages::body(vec![FieldError::general(ErrorCode::IdentificationPending, message)]);
            body.ready_at = ready_at.map(clock::rfc3339);
            body
        }
        LoginError::IdentificationFailed { reason } => {
            messages::body(vec![FieldError::general(ErrorCode::IdentificationFailed, messages::rejection(*reason))])
        }
    }
}

async fn end_session(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    if let Some(token) = web::cookie(request, SESSION_COOKIE) {
        if let Err(error) = logout(services, token, &web::requester(request)).await {
            return web::internal_error(face, &error);
        }
    }
    let response = match face {
        Face::Json => web::json(200, &serde_json::json!({"status": "logged_out"})),
        Face::Html => web::redirect("/login"),
    };
    web::with_cookie(response, &web::expired_session_cookie())
}
