#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

//! One login, several accounts (issue 12): a resident adds the accounts
//! they also pay for to their cabinet, each identified on its own; logs in
//! with any of them; a payer change closes only its account; an account is
//! unlinked with the password and can be taken again.

use std::time::Duration;

use e2e::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A parking space and a storage room of the sample payer, in the billing
/// data beside the sample accounts.
const PARKING: &str = "100200310";
const STORAGE: &str = "100200311";
const PAYER: &str = "Иванов Иван Иванович";

async fn upload(app: &TestApp, rows: &str) -> Value {
    let file = std::env::temp_dir().join(format!("accounts-{}.csv", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, format!("Лицевой счет;ФИО плательщика;Адрес;Сальдо\n{rows}")).unwrap();
    let report = app.stack.upload_billing_file(&file).await.unwrap();
    let _ = std::fs::remove_file(&file);
    serde_json::from_str(&report).unwrap()
}

/// The stack with the parking space and the storage room loaded.
async fn app_with_more_accounts() -> TestApp {
    let app = spawn_app().await;
    let report = upload(
        &app,
        &format!(
            "{PARKING};{PAYER};г. Москва, ул. Садовая, д. 5, машино-место 12;1 500,00\n\
             {STORAGE};{PAYER};г. Москва, ул. Садовая, д. 5, кладовая 3;-20,50\n"
        ),
    )
    .await;
    assert_eq!(report["loaded"], 2, "{report}");
    app
}

async fn add(app: &TestApp, session: &str, account: &str, full_name: &str) -> Answer {
    app.post_json_as("/account/accounts", &json!({"account": account, "full_name": full_name}), session).await
}

async fn cabinet(app: &TestApp, session: &str) -> Value {
    let answer = app.get("/account", "application/json", Some(session)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json()
}

/// The entry of `account` in the cabinet's list.
fn entry<'a>(cabinet: &'a Value, account: &str) -> &'a Value {
    cabinet["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == account)
        .unwrap_or_else(|| panic!("{account} is not in {cabinet}"))
}

/// Waits (up to 30 s) until `account` is no longer being identified.
async fn identified(app: &TestApp, session: &str, account: &str) -> Value {
    for _ in 0..60 {
        let cabinet = cabinet(app, session).await;
        let status = entry(&cabinet, account)["status"].as_str().unwrap().to_owned();
        if status != "awaiting_identification" && status != "suspended" {
            return cabinet;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{account} was not identified in 30 s");
}

async fn unlink(app: &TestApp, session: &str, account: &str, password: &str) -> Answer {
    app.post_json_as("/account/accounts/unlink", &json!({"account": account, "password": password}), session).await
}

#[tokio::test]
async fn a_second_and_a_third_account_join_the_cabinet_each_after_its_identification() {
    let app = app_with_more_accounts().await;
    let email = unique_email();
    let session = app.active_resident(&email).await;
    let letters_before = app.letters_to(&email).await.len();

    // Not the payer of the parking space: refused like a registration.
    let mismatch = add(&app, &session, PARKING, "Петров Пётр Петрович").await;
    assert_eq!((mismatch.status, mismatch.code()), (StatusCode::UNPROCESSABLE_ENTITY, "name_mismatch".into()));
    let unknown = add(&app, &session, "100200999", PAYER).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::UNPROCESSABLE_ENTITY, "account_not_found".into()));
    let blank = add(&app, &session, " ", "").await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST, "{}", blank.text);
    let blank = blank.json();
    let fields: Vec<&str> = blank["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["account", "full_name"], "both fields at once");

    // As typed from a bill: spaces in the number, a tab from copy-paste,
    // another case and «е» for «ё».
    let added = add(&app, &session, "100 200 310", "иванов\tиван  иванович").await;
    assert_eq!(added.status, StatusCode::ACCEPTED, "{}", added.text);
    assert_eq!(added.json()["status"], "awaiting_identification");
    assert_eq!(added.json()["account"], PARKING);
    assert!(added.json()["ready_at"].as_str().is_some_and(|at| at.len() >= 20), "{}", added.text);

    let pending = cabinet(&app, &session).await;
    assert_eq!(pending["account"], "100200300", "the first account stays on top: {pending}");
    assert_eq!(pending["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(pending["accounts"][0]["account"], "100200300");
    let parking = entry(&pending, PARKING);
    assert_eq!(parking["status"], "awaiting_identification");
    assert_eq!(parking["ready_at"], added.json()["ready_at"]);
    assert_eq!(parking["address"], Value::Null, "nothing of the account is shown before identification");
    assert_eq!(parking["balance"], Value::Null);

    let again = add(&app, &session, PARKING, PAYER).await;
    assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "already_in_cabinet".into()));
    let third = add(&app, &session, STORAGE, PAYER).await;
    assert_eq!(third.status, StatusCode::ACCEPTED, "{}", third.text);

    identified(&app, &session, PARKING).await;
    let done = identified(&app, &session, STORAGE).await;
    let accounts: Vec<(&str, &str)> = done["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["account"].as_str().unwrap(), a["status"].as_str().unwrap()))
        .collect();
    assert_eq!(accounts, [("100200300", "active"), (PARKING, "active"), (STORAGE, "active")]);
    let parking = entry(&done, PARKING);
    assert_eq!(parking["address"], "г. Москва, ул. Садовая, д. 5, машино-место 12");
    assert_eq!(parking["balance_kopecks"], 150_000);
    assert_eq!(parking["ready_at"], Value::Null);
    assert_eq!(entry(&done, STORAGE)["balance_kopecks"], -2_050);
    assert!(entry(&done, STORAGE)["data_as_of"].is_string());

    // A letter for each added account, saying which.
    let letters = app.letters_to(&email).await;
    let new: Vec<&SentLetter> = letters[letters_before..].iter().collect();
    for account in [PARKING, STORAGE] {
        let letter = new.iter().find(|l| l.text.contains(account)).unwrap_or_else(|| panic!("no letter for {account}"));
        assert!(letter.text.contains("добавлен в ваш личный кабинет"), "{}", letter.text);
    }
    assert_eq!(new.len(), 2, "one letter per added account");

    // Any account number of the cabinet logs into it, and so does the e-mail.
    for login in ["100200300", PARKING, "100 200 311", email.as_str()] {
        let answer = app.login(login, PASSWORD).await;
        assert_eq!(answer.status, StatusCode::OK, "{login}: {}", answer.text);
        let session = answer.session_cookie().unwrap();
        assert_eq!(cabinet(&app, &session).await["accounts"].as_array().unwrap().len(), 3, "{login}");
    }
    let wrong = app.login(PARKING, "не тот пароль").await;
    assert_eq!((wrong.status, wrong.code()), (StatusCode::UNAUTHORIZED, "invalid_credentials".into()));

    // Nobody else can take the accounts now.
    let mut other = registration(&unique_email());
    other["account"] = json!(PARKING);
    let registered = app.post_json("/register", &other).await;
    assert_eq!((registered.status, registered.code()), (StatusCode::CONFLICT, "already_registered".into()));
}

#[tokio::test]
async fn another_cabinet_cannot_add_an_account_that_is_taken() {
    let app = app_with_more_accounts().await;
    let session = app.active_resident(&unique_email()).await;
    assert_eq!(add(&app, &session, PARKING, PAYER).await.status, StatusCode::ACCEPTED);

    // A second cabinet, of the same payer's other account (a relative with
    // their own login, say).
    let other_email = unique_email();
    let mut other = registration(&other_email);
    other["account"] = json!(STORAGE);
    assert_eq!(app.post_json("/register", &other).await.status, StatusCode::CREATED);
    app.get(&app.confirmation_path(&other_email).await, "application/json", None).await;
    let other_session = app.login_when_ready(&other_email, PASSWORD).await.session_cookie().unwrap();

    for account in [PARKING, "100200300"] {
        let taken = add(&app, &other_session, account, PAYER).await;
        assert_eq!((taken.status, taken.code()), (StatusCode::CONFLICT, "already_registered".into()), "{account}");
    }
    let own = add(&app, &other_session, STORAGE, PAYER).await;
    assert_eq!((own.status, own.code()), (StatusCode::CONFLICT, "already_in_cabinet".into()));
    assert_eq!(cabinet(&app, &other_session).await["accounts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn registering_with_an_address_that_has_a_cabinet_sends_the_resident_there() {
    let app = spawn_app().await;
    let email = unique_email();
    let session = app.active_resident(&email).await;
    let letters_before = app.letters_to(&email).await.len();

    let mut second = registration(&email.to_uppercase());
    second["account"] = json!("100200301");
    second["full_name"] = json!("Салтыков-Щедрин Михаил Евграфович");
    let answer = app.post_json("/register", &second).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    assert_eq!(answer.code(), "email_has_cabinet");
    let message = answer.json()["errors"][0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("«Добавить лицевой счёт»") && message.contains("войдите"), "{message}");
    assert!(!message.contains('@') && !message.contains("100200300"), "nothing of that cabinet is told: {message}");

    // Nothing went into that cabinet, and no letter about it.
    assert_eq!(cabinet(&app, &session).await["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(app.letters_to(&email).await.len(), letters_before);
    // The HTML face says the same beside the e-mail field.
    let fields: Vec<(String, String)> = second
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "consent")
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .chain([("consent".to_owned(), "on".to_owned())])
        .collect();
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let page = app.post_form("/register", &fields).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.text);
    assert!(page.text.contains("Добавить лицевой счёт"), "{}", page.text);
    // The account stays free for its payer.
    let mut own = second.clone();
    own["email"] = json!(unique_email());
    assert_eq!(app.post_json("/register", &own).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_payer_change_closes_only_its_account_and_the_cabinet_keeps_the_others() {
    let app = app_with_more_accounts().await;
    let email = unique_email();
    let session = app.active_resident(&email).await;
    assert_eq!(add(&app, &session, PARKING, PAYER).await.status, StatusCode::ACCEPTED);
    identified(&app, &session, PARKING).await;
    let letters_before = app.letters_to(&email).await.len();

    // The parking space is sold.
    let report = upload(&app, &format!("{PARKING};Сидоров Пётр Ильич;машино-место 12;0\n")).await;
    assert_eq!(report["residents_suspended"], 1, "{report}");
    let letters = app.letters_to(&email).await;
    let suspended = &letters[letters_before..];
    assert_eq!(suspended.len(), 1);
    assert!(suspended[0].text.contains(PARKING), "{}", suspended[0].text);
    assert!(suspended[0].text.contains("остальные лицевые счета кабинета работают"), "{}", suspended[0].text);

    // The session goes on; the parking space is checked again and rejected.
    let during = cabinet(&app, &session).await;
    assert_eq!(during["account"], "100200300");
    assert!(["suspended", "rejected"].contains(&entry(&during, PARKING)["status"].as_str().unwrap()), "{during}");
    let after = identified(&app, &session, PARKING).await;
    assert_eq!(entry(&after, PARKING)["status"], "rejected");
    assert_eq!(entry(&after, PARKING)["address"], Value::Null, "the new payer's data is not shown");
    assert_eq!(entry(&after, "100200300")["status"], "active");
    assert_eq!(app.login(&email, PASSWORD).await.status, StatusCode::OK);

    // Now the first account changes payer too, while the storage room is
    // active: the cabinet stays open through it.
    assert_eq!(add(&app, &session, STORAGE, PAYER).await.status, StatusCode::ACCEPTED);
    identified(&app, &session, STORAGE).await;
    let report = upload(&app, "100200300;Сидоров Пётр Ильич;г. Москва, ул. Садовая, д. 5, кв. 12;0\n").await;
    assert_eq!(report["residents_suspended"], 1, "{report}");
    let now = identified(&app, &session, "100200300").await;
    assert_eq!(entry(&now, "100200300")["status"], "rejected");
    assert_eq!(now["account"], STORAGE, "the top fields describe the first active account: {now}");
    assert_eq!(now["address"], "г. Москва, ул. Садовая, д. 5, кладовая 3");
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);

    // When no account is active any more, the cabinet closes as before.
    let report = upload(&app, &format!("{STORAGE};Сидоров Пётр Ильич;кладовая 3;0\n")).await;
    assert_eq!(report["residents_suspended"], 1, "{report}");
    assert_eq!(app.get("/account", "application/json", Some(&session)).await.status, StatusCode::UNAUTHORIZED);
    let mut closed = app.login(&email, PASSWORD).await;
    for _ in 0..60 {
        if closed.code() != "identification_pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        closed = app.login(&email, PASSWORD).await;
    }
    assert_eq!((closed.status, closed.code()), (StatusCode::FORBIDDEN, "identification_failed".into()));
}

#[tokio::test]
async fn an_account_is_unlinked_with_the_password_and_can_be_taken_again() {
    let app = app_with_more_accounts().await;
    let session = app.active_resident(&unique_email()).await;
    assert_eq!(add(&app, &session, PARKING, PAYER).await.status, StatusCode::ACCEPTED);
    identified(&app, &session, PARKING).await;

    let wrong = unlink(&app, &session, PARKING, "не тот пароль").await;
    assert_eq!((wrong.status, wrong.code()), (StatusCode::UNAUTHORIZED, "invalid_credentials".into()));
    let first = unlink(&app, &session, "100 200 300", PASSWORD).await;
    assert_eq!((first.status, first.code()), (StatusCode::CONFLICT, "first_account".into()));
    let foreign = unlink(&app, &session, "100200301", PASSWORD).await;
    assert_eq!((foreign.status, foreign.code()), (StatusCode::NOT_FOUND, "not_linked".into()));
    let anonymous = app.post_json("/account/accounts/unlink", &json!({"account": PARKING, "password": PASSWORD})).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(entry(&cabinet(&app, &session).await, PARKING)["status"], "active", "still there after the refusals");

    let done = unlink(&app, &session, PARKING, PASSWORD).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(done.json()["status"], "unlinked");
    assert_eq!(cabinet(&app, &session).await["accounts"].as_array().unwrap().len(), 1);
    let gone = app.login(PARKING, PASSWORD).await;
    assert_eq!((gone.status, gone.code()), (StatusCode::UNAUTHORIZED, "invalid_credentials".into()));
    let twice = unlink(&app, &session, PARKING, PASSWORD).await;
    assert_eq!((twice.status, twice.code()), (StatusCode::NOT_FOUND, "not_linked".into()));

    // Linked again, and identified again.
    assert_eq!(add(&app, &session, PARKING, PAYER).await.status, StatusCode::ACCEPTED);
    assert_eq!(entry(&identified(&app, &session, PARKING).await, PARKING)["status"], "active");
    assert_eq!(unlink(&app, &session, PARKING, PASSWORD).await.status, StatusCode::OK);

    // Free for a registration of its own.
    let mut own = registration(&unique_email());
    own["account"] = json!(PARKING);
    let registered = app.post_json("/register", &own).await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
}

#[tokio::test]
async fn of_concurrent_additions_and_registrations_of_one_account_exactly_one_wins() {
    let app = app_with_more_accounts().await;
    let first = app.active_resident(&unique_email()).await;
    let other_email = unique_email();
    let mut other = registration(&other_email);
    other["account"] = json!(STORAGE);
    assert_eq!(app.post_json("/register", &other).await.status, StatusCode::CREATED);
    app.get(&app.confirmation_path(&other_email).await, "application/json", None).await;
    let second = app.login_when_ready(&other_email, PASSWORD).await.session_cookie().unwrap();

    let mut registering = registration(&unique_email());
    registering["account"] = json!(PARKING);
    let attempts = futures::future::join_all((0..6).map(|i| {
        let (app, first, second, registering) = (&app, &first, &second, &registering);
        async move {
            match i % 3 {
                0 => add(app, first, PARKING, PAYER).await,
                1 => add(app, second, PARKING, PAYER).await,
                _ => app.post_json("/register", registering).await,
            }
        }
    }))
    .await;
    let won = attempts.iter().filter(|a| a.status.is_success()).count();
    let texts: Vec<&str> = attempts.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(won, 1, "{texts:?}");
    let refused: std::collections::BTreeSet<String> =
        attempts.iter().filter(|a| !a.status.is_success()).map(Answer::code).collect();
    assert!(
        refused.iter().all(|c| ["already_registered", "already_in_cabinet", "email_has_cabinet"].contains(&c.as_str())),
        "{texts:?}"
    );
    let (a, b) = (cabinet(&app, &first).await, cabinet(&app, &second).await);
    let holders =
        [&a, &b].iter().filter(|c| c["accounts"].as_array().unwrap().iter().any(|x| x["account"] == PARKING)).count();
    let registered = attempts.iter().any(|a| a.status == StatusCode::CREATED);
    assert_eq!(holders + usize::from(registered), 1, "{a}\n{b}");
}

#[tokio::test]
async fn the_html_face_adds_shows_and_unlinks_accounts() {
    let app = app_with_more_accounts().await;
    let session = app.active_resident(&unique_email()).await;

    let page = app.get("/account", "text/html", Some(&session)).await;
    assert!(page.text.contains("Добавить лицевой счёт"), "{}", page.text);
    assert!(!page.text.contains("Лицевые счета в кабинете"), "one account: no list");

    let refused =
        app.post_form_as("/account/accounts", &[("account", PARKING), ("full_name", "Петров П. П.")], &session).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text.contains("<title>Ошибка: "), "{}", refused.text);
    assert!(refused.text.contains("ФИО не совпадает"), "{}", refused.text);
    assert!(refused.text.contains(&format!("value=\"{PARKING}\"")), "what was typed stays");

    let added = app.post_form_as("/account/accounts", &[("account", PARKING), ("full_name", PAYER)], &session).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.text);
    assert_eq!(added.headers["location"], "/account#accounts");
    let page = app.get("/account", "text/html", Some(&session)).await;
    assert!(page.text.contains("Лицевые счета в кабинете"), "{}", page.text);
    assert!(page.text.contains(&format!("data-countdown=\"countdown-{PARKING}\"")), "{}", page.text);
    assert!(page.text.contains("Сверяем с данными начислений"), "{}", page.text);

    identified(&app, &session, PARKING).await;
    let page = app.get("/account", "text/html", Some(&session)).await;
    assert!(page.text.contains("машино-место 12"), "{}", page.text);
    let unlinked =
        app.post_form_as("/account/accounts/unlink", &[("account", PARKING), ("password", PASSWORD)], &session).await;
    assert_eq!(unlinked.status, StatusCode::OK, "{}", unlinked.text);
    assert!(unlinked.text.contains("больше не в вашем кабинете"), "{}", unlinked.text);
}
