//! `GET /account`: the accounts of the resident's cabinet from the billing
//! data; `POST /account/accounts` adds an account («Добавить лицевой
//! счёт»), `POST /account/accounts/unlink` removes one with the password;
//! `POST /account/email` asks to change the address (a link goes to the new
//! one), `GET /account/email/confirm?token=...` is that link, and
//! `GET /account/email/cancel?token=...` the "not me" link sent to the old
//! address.

use cabinet::clock;
use cabinet::domain::{
    AccountStage, AddAccountForm, AddressForm, BalanceLine, Money, RejectionReason, Resident, UnlinkForm,
};
use cabinet::errors::{ErrorBody, ErrorCode, Field, FieldError};
use cabinet::services::Services;
use cabinet::usecases::account::{AccountError, AccountLine, AccountView, view};
use cabinet::usecases::address::{
    AddressError, Cancelled, EmailChangeError, cancel_email_change, confirm_email_change, request_email_change,
};
use cabinet::usecases::cabinet::{UnlinkError, Unlinked, add_account, unlink_account};
use cabinet::usecases::login::session_resident;
use cabinet::usecases::register::RegisterError;
use cabinet::web::messages;
use cabinet::web::pages::{AccountItem, AccountPage, AddAccountBox, MessagePage};
use cabinet::web::routes::{Incoming, Routes};
use cabinet::web::{self, DEVICE_COOKIE, Face, SESSION_COOKIE};
use lambda_http::{Body, RequestExt, Response};
use serde::Serialize;

/// The first active account (the contract from before there were several),
/// and every account of the cabinet.
#[derive(Serialize)]
struct CabinetJson {
    #[serde(flatten)]
    main: AccountJson,
    /// Set when letters to the resident's address do not arrive.
    #[serde(skip_serializing_if = "Option::is_none")]
    email_undeliverable: Option<String>,
    accounts: Vec<AccountJson>,
}

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
    /// Where the account's identification stands: `active`,
    /// `awaiting_identification`, `suspended` (the payer changed) or
    /// `rejected`.
    status: &'static str,
    /// When identification ends, while it runs.
    ready_at: Option<String>,
}

impl AccountJson {
    fn of(line: &AccountLine) -> Self {
        let pending = matches!(line.stage.stage, AccountStage::AwaitingIdentification | AccountStage::Suspended);
        Self {
            account: line.stage.account.to_string(),
            full_name: line.full_name.clone(),
            address: line.address.clone(),
            balance: line.balance.map(Money::rubles),
            balance_kopecks: line.balance.map(|m| m.0),
            balance_text: line.balance.map(|m| m.to_string()),
            data_as_of: line.data_as_of.map(clock::rfc3339),
            status: line.stage.stage.as_str(),
            ready_at: line.stage.ready_at.filter(|_| pending).map(clock::rfc3339),
        }
    }
}

pub fn routes() -> Routes {
    Routes::new()
        .get("/account", show)
        .post("/account/email", change_email)
        .post("/account/accounts", add)
        .post("/account/accounts/unlink", unlink)
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

/// The resident of the session, or the answer for a request without one.
async fn logged_in(services: &Services, presented: Option<&str>, face: Face) -> Result<Resident, Response<Body>> {
    match session_resident(services, presented).await {
        Ok(Some(resident)) => Ok(resident),
        Ok(None) => Err(not_authenticated(face)),
        Err(error) => Err(web::internal_error(face, &error)),
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
    let resident = match logged_in(services, web::cookie(request, SESSION_COOKIE), face).await {
        Ok(resident) => resident,
        Err(answer) => return answer,
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
    answer_with(face, 200, view, AddAccountBox::default())
}

/// The cabinet, with the add-account form as given (empty, or with errors).
fn answer_with(face: Face, status: u16, view: AccountView, add: AddAccountBox) -> Response<Body> {
    let undeliverable = view.undeliverable.as_ref().map(|_| messages::notices_will_not_arrive(&view.masked_email));
    match face {
        Face::Json => web::json(
            status,
            &CabinetJson {
                main: AccountJson::of(&view.main),
                email_undeliverable: undeliverable,
                accounts: view.accounts.iter().map(AccountJson::of).collect(),
            },
        ),
        Face::Html => {
            let accounts = if view.accounts.len() > 1 { view.accounts.iter().map(item).collect() } else { Vec::new() };
            let main = view.main;
            web::html(
                status,
                &AccountPage {
                    account: main.stage.account.to_string(),
                    full_name: main.full_name,
                    address: main.address,
                    balance: BalanceLine::of(main.balance),
                    data_as_of: main.data_as_of.map(clock::moscow),
                    undeliverable,
                    masked_email: view.masked_email,
                    accounts,
                    add,
                },
            )
        }
    }
}

/// One account of the list, in words.
fn item(line: &AccountLine) -> AccountItem {
    let stage = &line.stage;
    let pending = matches!(stage.stage, AccountStage::AwaitingIdentification | AccountStage::Suspended);
    let ready_at = stage.ready_at.filter(|_| pending);
    let words = match stage.stage {
        AccountStage::Active => "Подключён.".to_owned(),
        AccountStage::AwaitingIdentification | AccountStage::AwaitingEmailConfirmation => {
            "Сверяем с данными начислений.".to_owned()
        }
        AccountStage::Suspended => {
            "В данных начислений по этому счёту теперь другой плательщик: сверяем заново.".to_owned()
        }
        AccountStage::Rejected => {
            messages::rejection(stage.rejection_reason.unwrap_or(RejectionReason::PayerChanged)).to_owned()
        }
    };
    AccountItem {
        account: stage.account.to_string(),
        full_name: line.full_name.clone(),
        address: line.address.clone(),
        balance: line.balance.map(|b| BalanceLine::of(Some(b))),
        data_as_of: line.data_as_of.map(clock::moscow),
        stage: words,
        ready_at: ready_at.map(clock::moscow),
        ready_at_iso: ready_at.map(clock::rfc3339),
        // Listed only with another account beside it; the cabinet refuses
        // to lose its last active one.
        removable: true,
    }
}

/// What adding an account came to, for JSON clients.
#[derive(Serialize)]
struct AddedJson {
    status: &'static str,
    account: String,
    ready_at: String,
}

async fn add(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let form: AddAccountForm = match web::read_body(request) {
        Ok(form) => form,
        Err(errors) => return web::errors(face, &errors),
    };
    let presented = web::cookie(request, SESSION_COOKIE);
    let resident = match logged_in(services, presented, face).await {
        Ok(resident) => resident,
        Err(answer) => return answer,
    };
    let base_url = web::base_url(&services.config, request);
    let refused = |body: ErrorBody, retry_after| refused_add((services, presented, face), &form, body, retry_after);
    match add_account(services, &resident, &form, &base_url, &web::requester(request)).await {
        Ok(added) => match face {
            Face::Json => web::json(
                202,
                &AddedJson {
                    status: "awaiting_identification",
                    account: added.account.to_string(),
                    ready_at: clock::rfc3339(added.ready_at),
                },
            ),
            // The cabinet with the new account in its list, counting down.
            Face::Html => web::redirect("/account#accounts"),
        },
        Err(RegisterError::Refused(errors)) => refused(messages::body(errors), None).await,
        Err(RegisterError::Paused { retry_after_seconds, error }) => {
            refused(messages::body(vec![error]), Some(retry_after_seconds)).await
        }
        Err(RegisterError::RateLimited(limited)) => web::rate_limited(face, limited.retry_after_seconds),
        Err(RegisterError::Unexpected(error)) => web::internal_error(face, &error),
    }
}

/// The add-account form refused: the errors as JSON, or the cabinet again
/// with the form as typed and its errors.
async fn refused_add(
    (services, presented, face): (&Services, Option<&str>, Face),
    form: &AddAccountForm,
    body: ErrorBody,
    retry_after: Option<u64>,
) -> Response<Body> {
    let status = messages::status(&body);
    let answer = match face {
        Face::Json => web::json(status, &body),
        Face::Html => {
            let typed = |v: &Option<String>| v.clone().unwrap_or_default();
            let add = AddAccountBox::refused(typed(&form.account), typed(&form.full_name), &body);
            match view(services, presented).await {
                Ok(cabinet) => answer_with(face, status, cabinet, add),
                Err(AccountError::NotAuthenticated) => not_authenticated(face),
                Err(AccountError::Unexpected(error)) => web::internal_error(face, &error),
            }
        }
    };
    match retry_after {
        Some(seconds) => web::with_retry_after(answer, seconds),
        None => answer,
    }
}

async fn unlink(incoming: Incoming) -> Response<Body> {
    let (services, request, face) = incoming.parts();
    let form: UnlinkForm = match web::read_body(request) {
        Ok(form) => form,
        Err(errors) => return web::errors(face, &errors),
    };
    let resident = match logged_in(services, web::cookie(request, SESSION_COOKIE), face).await {
        Ok(resident) => resident,
        Err(answer) => return answer,
    };
    let device = web::cookie(request, DEVICE_COOKIE);
    match unlink_account(services, &resident, &form, &web::requester(request), device).await {
        Ok(Unlinked { account, signed_out: false }) => {
            let message = format!(
                "Лицевой счёт {account} больше не в вашем кабинете. Его снова можно добавить или зарегистрировать."
            );
            let answer = Done { status: "unlinked", email: None, letter_sent: None, message };
            done(face, 200, "Счёт отвязан", &answer)
        }
        Ok(Unlinked { account, signed_out: true }) => {
            let message = format!(
                "Лицевой счёт {account} больше не в вашем кабинете: это был счёт, с которым вы регистрировались, поэтому все сеансы входа завершены. Войдите снова — с e-mail или номером другого вашего лицевого счёта и прежним паролем."
            );
            let answer = Done { status: "unlinked", email: None, letter_sent: None, message };
            match face {
                Face::Json => web::json(200, &answer),
                Face::Html => web::html(200, &MessagePage::new("Счёт отвязан", &answer.message, "/login", "Войти")),
            }
        }
        Err(UnlinkError::Refused(errors)) => refused_here(face, "Не получилось", &messages::body(errors)),
        Err(UnlinkError::RateLimited(limited)) => web::rate_limited(face, limited.retry_after_seconds),
        Err(UnlinkError::Unexpected(error)) => web::internal_error(face, &error),
    }
}
