//! `GET /account`: the resident's account from the billing data.

use cabinet::Services;
use cabinet::clock;
use cabinet::errors::{ErrorBody, ErrorCode, FieldError};
use cabinet::usecases::account::{AccountError, AccountView, view};
use cabinet::web::pages::AccountPage;
use cabinet::web::{self, Face, SESSION_COOKIE};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
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

pub async fn handle(services: &Services, request: Request) -> Response<Body> {
    let face = Face::of(&request);
    if request.method() != Method::GET {
        return web::method_not_allowed(face);
    }
    match view(services, web::cookie(&request, SESSION_COOKIE)).await {
        Ok(account) => answer(face, account),
        Err(AccountError::NotAuthenticated) => match face {
            Face::Json => web::json(
                401,
                &ErrorBody::new(vec![FieldError::general(ErrorCode::NotAuthenticated, "Войдите в личный кабинет.")]),
            ),
            Face::Html => web::redirect("/login"),
        },
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
                balance: view.balance.map(|m| m.to_string()),
                data_as_of: view.data_as_of.map(clock::moscow),
                undeliverable: view.undeliverable,
            },
        ),
    }
}
