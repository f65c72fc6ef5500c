#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Faults in the AWS calls the functions make (issue 16): the answer a
//! resident gets, what is left behind, and that nothing is used up.
//!
//! The functions call AWS through a fault proxy (`fault_proxy.rs`) with
//! the SDK timeouts they have in Lambda; each test makes chosen operations
//! fail for good (until cleared), fail twice and then pass, lose their
//! answer after the work was done, or answer late, and then checks the
//! answer, the data left behind, and that the whole path still finishes
//! once the fault clears.

use std::time::{Duration, Instant};

use e2e::fault_proxy::{Fault, FaultProxy, Rule};
use e2e::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A stack whose functions call AWS through `proxy`, with the timeouts of
/// the Lambdas (attempt 2.5 s, call 6 s, three attempts).
async fn app_behind(proxy: &FaultProxy) -> TestApp {
    app_behind_with(proxy, |_| {}).await
}

async fn app_behind_with(proxy: &FaultProxy, configure: impl FnOnce(&mut local_stack::Options)) -> TestApp {
    spawn_app_with(|o| {
        o.function_endpoint = Some(proxy.url.clone());
        o.timeouts = cabinet::services::lambda_timeouts();
        configure(o);
    })
    .await
}

/// AWS's fault as the resident gets it: 503 `unavailable`, `Retry-After`,
/// and in Russian when to come back, with no promise about what was saved.
#[track_caller]
fn assert_unavailable(answer: &Answer, what: &str) {
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {}", answer.text);
    let retry_after = answer.headers.get("retry-after").and_then(|v| v.to_str().ok());
    assert_eq!(retry_after, Some("30"), "{what}: {:?}", answer.headers);
    let message = if answer.text.starts_with('{') {
        assert_eq!(answer.code(), "unavailable", "{what}");
        answer.json()["errors"][0]["message"].as_str().unwrap_or_default().to_owned()
    } else {
        answer.text.clone()
    };
    assert!(message.contains("Попробуйте ещё раз через 30 секунд"), "{what}: {message}");
}

/// Items of the residents table whose key starts with `prefix`.
async fn items(app: &TestApp, prefix: &str) -> Vec<Value> {
    let all = app.stack.table_items("ResidentsTable").await.unwrap();
    all.into_iter().filter(|i| i["pk"].as_str().is_some_and(|pk| pk.starts_with(prefix))).collect()
}

/// Attempts counted now under a rate limit (`RATE#<action>#<subject>#…`);
/// `None` when none was ever counted.
async fn hits(app: &TestApp, action: &str, subject: &str) -> Option<i64> {
    let counters = items(app, &format!("RATE#{action}#{subject}#")).await;
    (!counters.is_empty()).then(|| counters.iter().map(|c| c["hits"].as_i64().unwrap_or_default()).sum())
}

/// The rest of the path, once the fault cleared: the newest link confirms,
/// identification runs, login opens the account page with the payer on it.
async fn path_finishes(app: &TestApp, email: &str, password: &str) -> String {
    let confirmed = app.get(&app.confirmation_path(email).await, "application/json", None).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    account_opens(app, email, password).await
}

/// Login (once identified) and the account page; returns the session cookie.
async fn account_opens(app: &TestApp, login: &str, password: &str) -> String {
    let logged_in = app.login_when_ready(login, password).await;
    assert_eq!(logged_in.status, StatusCode::OK, "{}", logged_in.text);
    let cookie = logged_in.session_cookie().expect("a session cookie");
    let page = app.get("/account", "application/json", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert!(page.json()["full_name"].as_str().is_some_and(|name| !name.is_empty()), "{}", page.text);
    cookie
}

/// A registration of another sample account (each can be registered once).
fn registration_of(account: &str, full_name: &str, email: &str) -> Value {
    let mut body = registration(email);
    body["account"] = json!(account);
    body["full_name"] = json!(full_name);
    body
}

/// Letters to `email` with a confirmation link, waiting up to 15 s for
/// `at_least` of them (a late request of a slow SES lands late).
async fn confirmation_letters(app: &TestApp, email: &str, at_least: usize) -> usize {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        let count = app.confirmation_paths(email).await.len();
        if count >= at_least {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("fewer than {at_least} letters to {email} in 15 s");
}

/// The registration form of the sample resident, as a browser posts it.
fn form(email: &str) -> Vec<(&'static str, String)> {
    vec![
        ("account", "100200300".into()),
        ("full_name", "Иванов Иван Иванович".into()),
        ("phone", "8 916 123 45 67".into()),
        ("email", email.into()),
        ("password", PASSWORD.into()),
        ("password_confirm", PASSWORD.into()),
        ("consent", "on".into()),
    ]
}

async fn post_form(app: &TestApp, path: &str, fields: &[(&str, String)]) -> Answer {
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    app.post_form(path, &fields).await
}

/// Every call of the functions fails to connect (AWS unreachable): each
/// use case answers 503 with `Retry-After` in Russian, and the registration
/// form comes back with what was typed, passwords aside.
#[tokio::test]
async fn with_aws_unreachable_every_answer_is_a_503_that_says_when_to_come_back() {
    let app = spawn_app_with(|o| {
        o.function_endpoint = Some("http://127.0.0.1:9".into());
        // Its import could not run either.
        o.billing_file = None;
    })
    .await;
    let email = unique_email();
    let json_answers = [
        app.register(&email).await,
        app.login(&email, PASSWORD).await,
        app.post_json("/confirm/resend", &json!({"login": email})).await,
        app.post_json("/password/forgot", &json!({"login": email})).await,
    ];
    for answer in &json_answers {
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.text);
        assert_eq!(answer.code(), "unavailable");
        assert!(answer.headers.contains_key("retry-after"), "{:?}", answer.headers);
        let message = answer.json()["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains("Попробуйте ещё раз через") && !message.contains("не потеряны"), "{message}");
    }

    let page = app.post_registration_form(&registration(&email)).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.headers.contains_key("retry-after"));
    assert!(
        page.text.contains("<form") && page.text.contains("Иванов Иван Иванович") && page.text.contains(&email),
        "{}",
        page.text
    );
    assert!(!page.text.contains(PASSWORD), "the password is never sent back");
}

/// DynamoDB throttling and AWS 5xx at registration, for good (until
/// cleared): every try is a 503 with `Retry-After` (the form comes back
/// with what was typed), nothing is stored half-way, no letter goes, no
/// rate-limit attempt is used up; once the fault clears the same resident
/// registers and gets all the way to the account page.
#[tokio::test]
async fn a_registration_under_a_lasting_fault_stores_nothing_and_goes_through_once_it_clears() {
    let proxy = start_fault_proxy().await;
    let app = app_behind(&proxy).await;
    let email = unique_email();

    // The transaction that stores the resident is throttled (not the one
    // that counts the account's attempt with its name check).
    proxy.add(Rule::new("DynamoDB.TransactWriteItems", Fault::Throttled).containing("RESIDENT#"));
    for _ in 0..3 {
        assert_unavailable(&app.register(&email).await, "throttled registration");
    }
    assert_eq!(proxy.faulted("DynamoDB.TransactWriteItems"), 9, "the SDK tried each three times");
    let page = post_form(&app, "/register", &form(&email)).await;
    assert_unavailable(&page, "throttled registration form");
    assert!(page.text.contains("<form") && page.text.contains("Иванов Иван Иванович") && page.text.contains(&email));
    assert!(!page.text.contains(PASSWORD), "the password is never sent back");
    // AWS answers 500 to the billing read.
    proxy.clear();
    proxy.add(Rule::new("DynamoDB.GetItem", Fault::ServerError).containing("BillingAccounts"));
    assert_unavailable(&app.register(&email).await, "billing read failing with 500");

    for prefix in ["RESIDENT#", "EMAIL#", "STATUS#", "CONFIRM#"] {
        assert_eq!(items(&app, prefix).await, Vec::<Value>::new(), "nothing stored under {prefix}");
    }
    assert!(app.letters_to(&email).await.is_empty(), "no letter");
    assert_eq!(hits(&app, "register-account", "100200300").await, Some(0), "the account's tries were given back");
    assert_eq!(hits(&app, "register-ip", "127.0.0.1").await, Some(0), "the address's tries were given back");

    proxy.clear();
    let registered = app.register(&email).await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
    path_finishes(&app, &email, PASSWORD).await;
}

/// An active resident's use cases under a lasting fault: the account page,
/// a reset link, a new password and login each answer 503 while it lasts,
/// keep the session and the links working, and use up neither the reset
/// letters (3 per 15 min) nor the login lock (locked after 5 failures);
/// once the fault clears, each works at the first try.
#[tokio::test]
async fn an_active_residents_use_cases_under_a_lasting_fault_use_up_nothing() {
    let proxy = start_fault_proxy().await;
    let app = app_behind(&proxy).await;
    let email = unique_email();
    let cookie = app.active_resident(&email).await;

    // The account page: the session cannot be read.
    proxy.add(Rule::new("DynamoDB.GetItem", Fault::ServerError).containing("SESSION#"));
    assert_unavailable(&app.get("/account", "text/html", Some(&cookie)).await, "account page");
    assert_unavailable(&app.get("/account", "application/json", Some(&cookie)).await, "account JSON");
    proxy.clear();
    assert_eq!(app.get("/account", "application/json", Some(&cookie)).await.status, StatusCode::OK, "still logged in");

    // A reset link asked for four times (the limit is three) while the
    // resident's record cannot be read.
    proxy.add(Rule::new("DynamoDB.GetItem", Fault::Throttled).containing("EMAIL#"));
    for _ in 0..4 {
        assert_unavailable(&app.post_json("/password/forgot", &json!({"login": email})).await, "reset request");
    }
    proxy.clear();
    let asked = app.post_json("/password/forgot", &json!({"login": email})).await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.text);
    let token = app.reset_token(&email).await;

    // The new password cannot be stored: the link stays usable.
    let new_password = "зелёный троллейбус";
    let reset = json!({"token": token, "password": new_password, "password_confirm": new_password});
    proxy.always("DynamoDB.TransactWriteItems", Fault::ServerError);
    assert_unavailable(&app.post_json("/password/reset", &reset).await, "new password");
    proxy.clear();
    assert_eq!(app.login(&email, PASSWORD).await.status, StatusCode::OK, "the old password still holds");
    let done = app.post_json("/password/reset", &reset).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);

    // Six logins while the resident's own lock can be neither read nor
    // written (a login reads it with the resident and writes it with its
    // verdict; other password checks count with a conditional update):
    // none of them is a failure of the resident's.
    let logins = hits(&app, "login-ip", "127.0.0.1").await;
    proxy.add(Rule::new("DynamoDB.GetItem", Fault::Throttled).containing("LOCK#resident:"));
    proxy.add(Rule::new("DynamoDB.UpdateItem", Fault::Throttled).containing("LOCK#resident:"));
    proxy.add(Rule::new("DynamoDB.TransactWriteItems", Fault::Throttled).containing("LOCK#resident:"));
    for _ in 0..6 {
        assert_unavailable(&app.login(&email, new_password).await, "login");
    }
    proxy.clear();
    assert_eq!(hits(&app, "login-ip", "127.0.0.1").await, logins, "the address's logins were given back");
    account_opens(&app, &email, new_password).await;
}

/// A resident waiting for the letter, under a lasting fault: asking for it
/// again (3 per 15 min) and correcting the address (5 per hour, letters to
/// one mailbox 6 per hour, under the login lock) answer 503 while it lasts
/// and use up none of those tries; once it clears, each works at the first
/// try and the path finishes at the corrected address.
#[tokio::test]
async fn a_resident_waiting_for_the_letter_under_a_lasting_fault_uses_up_nothing() {
    let proxy = start_fault_proxy().await;
    let app = app_behind(&proxy).await;
    let wrong = unique_email();
    assert_eq!(app.register(&wrong).await.status, StatusCode::CREATED);
    let old_link = app.confirmation_path(&wrong).await;

    // The letter again, while the resident cannot be looked up.
    proxy.add(Rule::new("DynamoDB.GetItem", Fault::Throttled).containing("EMAIL#"));
    for _ in 0..4 {
        assert_unavailable(&app.post_json("/confirm/resend", &json!({"login": wrong})).await, "resend");
    }
    proxy.clear();
    let resent = app.post_json("/confirm/resend", &json!({"login": wrong})).await;
    assert_eq!(resent.status, StatusCode::ACCEPTED, "{}", resent.text);
    assert_eq!(app.letters_to(&wrong).await.len(), 2, "the letter went again");

    // The address, seven times, while the transaction that moves it fails.
    let right = unique_email();
    let change = json!({"login": wrong, "password": PASSWORD, "email": right});
    proxy.always("DynamoDB.TransactWriteItems", Fault::ServerError);
    for _ in 0..7 {
        assert_unavailable(&app.post_json("/email", &change).await, "address change");
    }
    proxy.clear();
    assert_eq!(items(&app, "EMAIL#").await.len(), 1, "one address claimed");
    let changed = app.post_json("/email", &change).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(app.get(&old_link, "application/json", None).await.code(), "address_changed");
    path_finishes(&app, &right, PASSWORD).await;
}

/// Two failures, then success, at every step of the path and with every
/// kind of fault (throttling, a 5xx, a dropped connection, a lost answer):
/// the SDK's retries hide them and the resident notices nothing. Each
/// fault is checked to have happened.
#[tokio::test]
async fn two_failures_then_success_at_every_step_go_unnoticed() {
    let proxy = start_fault_proxy().await;
    let app = app_behind(&proxy).await;
    let email = unique_email();
    let twice = |operation: &str, containing: &str, fault: Fault| {
        proxy.add(Rule::new(operation, fault).containing(containing).times(2));
    };
    let all_injected = |expected: usize| {
        let injected = proxy.calls().iter().filter(|c| c.fault.is_some()).count();
        assert_eq!(injected, expected, "{:#?}", proxy.calls());
    };

    twice("DynamoDB.TransactWriteItems", "STATUS#", Fault::Throttled);
    twice("SES.SendEmail", "", Fault::ServerError);
    let registered = app.register(&email).await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
    assert_eq!(registered.json()["letter_sent"], true);
    assert_eq!(app.letters_to(&email).await.len(), 1, "one letter");
    all_injected(4);

    twice("SES.SendEmail", "", Fault::Drop);
    twice("DynamoDB.UpdateItem", "RATE#resend#", Fault::Throttled);
    let resent = app.post_json("/confirm/resend", &json!({"login": email})).await;
    assert_eq!(resent.status, StatusCode::ACCEPTED, "{}", resent.text);
    assert_eq!(app.letters_to(&email).await.len(), 2, "the letter went again");
    all_injected(8);

    twice("SQS.SendMessage", "", Fault::Throttled);
    twice("DynamoDB.TransactWriteItems", "", Fault::LoseAnswer);
    let confirmed = app.get(&app.confirmation_path(&email).await, "application/json", None).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    assert_eq!(confirmed.json()["already_confirmed"], false, "{}", confirmed.text);
    all_injected(12);

    // Identification reads the billing data; login stores the session (in
    // the transaction of its verdict); the account page reads the billing
    // data again.
    twice("DynamoDB.GetItem", "BillingAccounts", Fault::ServerError);
    twice("DynamoDB.TransactWriteItems", "SESSION#", Fault::Throttled);
    let cookie = account_opens(&app, &email, PASSWORD).await;
    all_injected(16);
    twice("DynamoDB.GetItem", "SESSION#", Fault::Drop);
    let page = app.get("/account", "text/html", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    all_injected(18);

    twice("DynamoDB.TransactWriteItems", "RESET#", Fault::LoseAnswer);
    twice("SES.SendEmail", "", Fault::Throttled);
    let asked = app.post_json("/password/forgot", &json!({"login": email})).await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.text);
    let token = app.reset_token(&email).await;
    all_injected(22);
    let new_password = "зелёный троллейбус";
    twice("DynamoDB.TransactWriteItems", "", Fault::ServerError);
    let reset = json!({"token": token, "password": new_password, "password_confirm": new_password});
    let done = app.post_json("/password/reset", &reset).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    all_injected(24);
    assert_eq!(app.login(&email, new_password).await.status, StatusCode::OK);
    let ready: Vec<_> = app.letters_to(&email).await.into_iter().filter(|l| l.text.contains("/login")).collect();
    assert!(!ready.is_empty());
}

/// Answers lost after the work was done. Lost on every try, the resident
/// gets a 503, and trying again gives a clear answer from which the path
/// goes on: "already registered", then login sends the letter; the link
/// confirms (the job queued twice identifies once); "link already used",
/// and the new password works.
#[tokio::test]
async fn lost_answers_give_a_clear_answer_on_the_next_try_and_the_path_finishes() {
    let proxy = start_fault_proxy().await;
    let app = app_behind(&proxy).await;
    let email = unique_email();

    proxy.add(Rule::new("DynamoDB.TransactWriteItems", Fault::LoseAnswer).containing("RESIDENT#"));
    assert_unavailable(&app.register(&email).await, "registration, its answer lost");
    proxy.clear();
    assert_eq!(items(&app, "RESIDENT#").await.len(), 1, "the registration was stored");
    assert!(app.letters_to(&email).await.is_empty(), "no letter yet");
    let again = app.register(&email).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(again.code(), "already_registered");
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.code(), "email_not_confirmed", "{}", login.text);
    assert_eq!(app.letters_to(&email).await.len(), 1, "login sent the letter");

    // The job is queued on every try, the answers lost.
    proxy.always("SQS.SendMessage", Fault::LoseAnswer);
    let link = app.confirmation_path(&email).await;
    assert_unavailable(&app.get(&link, "application/json", None).await, "confirmation, its job's answer lost");
    proxy.clear();
    let confirmed = app.get(&link, "application/json", None).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    assert_eq!(confirmed.json()["already_confirmed"], false);

    // The session's conditional write (in the transaction of the login's
    // verdict): its answer lost once.
    let lost_before = proxy.faulted("DynamoDB.TransactWriteItems");
    proxy.add(Rule::new("DynamoDB.TransactWriteItems", Fault::LoseAnswer).containing("SESSION#").times(1));
    account_opens(&app, &email, PASSWORD).await;
    assert_eq!(proxy.faulted("DynamoDB.TransactWriteItems"), lost_before + 1);
    let ready = app.letters_to(&email).await.into_iter().filter(|l| !l.text.contains("/confirm?token=")).count();
    assert_eq!(ready, 1, "identified once, one letter");

    // The new password's transaction: every answer lost.
    assert_eq!(app.post_json("/password/forgot", &json!({"login": email})).await.status, StatusCode::ACCEPTED);
    let token = app.reset_token(&email).await;
    let new_password = "зелёный троллейбус";
    let reset = json!({"token": token, "password": new_password, "password_confirm": new_password});
    proxy.always("DynamoDB.TransactWriteItems", Fault::LoseAnswer);
    assert_unavailable(&app.post_json("/password/reset", &reset).await, "new password, its answer lost");
    proxy.clear();
    let again = app.post_json("/password/reset", &reset).await;
    assert_eq!(again.code(), "invalid_token", "{}", again.text);
    assert!(again.text.contains("уже использована"), "{}", again.text);
    account_opens(&app, &email, new_password).await;
}

/// SES failing at registration. Throttled for good: the registration is
/// kept, the resident told the letter did not go, and logging in sends it
/// once SES is back. Its answer lost, or later than the SDK waits: the
/// letter may well have gone, so its link is kept and works.
#[tokio::test]
async fn ses_failing_keeps_the_registration_and_every_link_that_may_have_gone_works() {
    let proxy = start_fault_proxy().await;
    let app = app_behind(&proxy).await;

    let first = unique_email();
    proxy.always("SES.SendEmail", Fault::Throttled);
    let registered = app.register(&first).await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
    assert_eq!(registered.json()["letter_sent"], false);
    assert!(registered.json()["message"].as_str().unwrap().contains("Войдите с паролем"), "{}", registered.text);
    assert_eq!(app.login(&first, PASSWORD).await.code(), "email_not_confirmed");
    proxy.clear();
    assert_eq!(app.login(&first, PASSWORD).await.code(), "email_not_confirmed");
    assert_eq!(confirmation_letters(&app, &first, 1).await, 1, "the letter went once SES was back");
    path_finishes(&app, &first, PASSWORD).await;

    proxy.always("SES.SendEmail", Fault::LoseAnswer);
    let asked = app.post_json("/password/forgot", &json!({"login": first})).await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.text);
    proxy.clear();
    let token = app.reset_token(&first).await;
    let page = app.get(&format!("/password/reset?token={token}"), "application/json", None).await;
    assert_eq!(page.status, StatusCode::OK, "the reset link that went works: {}", page.text);

    let second = unique_email();
    proxy.always("SES.SendEmail", Fault::LoseAnswer);
    let registered =
        app.post_json("/register", &registration_of("100200301", "Салтыков-Щедрин Михаил Евграфович", &second)).await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
    assert_eq!(registered.json()["letter_sent"], false, "nothing says a letter went");
    proxy.clear();
    assert_eq!(confirmation_letters(&app, &second, 3).await, 3, "each try went");
    path_finishes(&app, &second, PASSWORD).await;

    let third = unique_email();
    proxy.always("SES.SendEmail", Fault::Delay(Duration::from_secs(4)));
    let started = Instant::now();
    let registered = app.post_json("/register", &registration_of("100200302", "Фёдорова Алёна Петровна", &third)).await;
    assert!(started.elapsed() < Duration::from_secs(10), "answered in {:?}", started.elapsed());
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
    assert_eq!(registered.json()["letter_sent"], false);
    proxy.clear();
    confirmation_letters(&app, &third, 1).await;
    path_finishes(&app, &third, PASSWORD).await;
}

/// DynamoDB slower than the SDK waits (every answer 4 s late, the attempt
/// timeout is 2.5 s): every use case answers 503 in time, none hangs; once
/// DynamoDB is quick again the whole path finishes.
#[tokio::test]
async fn with_a_slow_endpoint_every_answer_is_a_503_in_time_and_the_path_finishes_after() {
    let proxy = start_fault_proxy().await;
    let app = app_behind(&proxy).await;
    let email = unique_email();
    let cookie = app.active_resident(&email).await;

    proxy.always("DynamoDB.*", Fault::Delay(Duration::from_secs(4)));
    let other = unique_email();
    let started = Instant::now();
    let other_registration = registration_of("100200301", "Салтыков-Щедрин Михаил Евграфович", &other);
    let forgot = json!({"login": email});
    let (registered, logged_in, page, asked) = futures::join!(
        app.post_json("/register", &other_registration),
        app.login(&email, PASSWORD),
        app.get("/account", "text/html", Some(&cookie)),
        app.post_json("/password/forgot", &forgot),
    );
    let took = started.elapsed();
    for (answer, what) in [(registered, "register"), (logged_in, "login"), (page, "account"), (asked, "reset")] {
        assert_unavailable(&answer, what);
    }
    assert!(took < Duration::from_secs(10), "all answered in {took:?}");
    proxy.clear();
    // The late requests land meanwhile; none of them blocks the resident.
    let registered = app.post_json("/register", &other_registration).await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
    path_finishes(&app, &other, PASSWORD).await;
    assert_eq!(app.get("/account", "application/json", Some(&cookie)).await.status, StatusCode::OK);
}

/// Every DynamoDB answer 1.5 s late: no single call outlasts the SDK's
/// attempt timeout (2.5 s), yet the registration outlasts its deadline (in
/// Lambda the function's timeout less 1.5 s; here 2.8 s). Its reads and the
/// address's count go at once (1.5 s), then the count of the account's
/// attempt (3 s): it is cut at its deadline, before anything is stored,
/// and answered 503 then, not after the function's timeout; once DynamoDB
/// is quick again the same resident registers and gets in. The 1 s left to
/// each attempt is for moto's own answer on a loaded machine: with 0.5 s
/// (a 2 s delay), CI saw the first round's three attempts time out and be
/// retried.
#[tokio::test]
async fn a_request_slowed_call_by_call_is_answered_503_at_its_deadline() {
    let proxy = start_fault_proxy().await;
    let app = app_behind_with(&proxy, |o| o.request_budget = Some(Duration::from_millis(2800))).await;
    let email = unique_email();

    proxy.always("DynamoDB.*", Fault::Delay(Duration::from_millis(1500)));
    let started = Instant::now();
    let answer = app.register(&email).await;
    let took = started.elapsed();
    assert_unavailable(&answer, "registration past its deadline");
    assert!(took >= Duration::from_millis(2800) && took < Duration::from_millis(4800), "answered in {took:?}");
    let slowed: Vec<String> = proxy.calls().into_iter().filter(|c| c.fault.is_some()).map(|c| c.operation).collect();
    assert!((3..=5).contains(&slowed.len()), "each call answered in time, not retried: {slowed:?}");

    proxy.clear();
    let registered = app.register(&email).await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
    path_finishes(&app, &email, PASSWORD).await;
}

/// The identification job under a lasting fault (the billing data cannot
/// be read): the job fails and stays on its queue for a retry; the
/// resident is told the check is delayed by a fault on our side; once the
/// fault clears they get in (login runs the overdue check) and get one
/// "cabinet is open" letter.
#[tokio::test]
async fn identification_under_a_lasting_fault_finishes_once_it_clears() {
    let proxy = start_fault_proxy().await;
    let app = app_behind_with(&proxy, |o| {
        o.environment.insert("IDENTIFY_OVERDUE_SECONDS".into(), "1".into());
    })
    .await;
    let email = unique_email();
    let registered = app.register(&email).await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
    // From the confirmation on, the billing data cannot be read.
    proxy.add(Rule::new("DynamoDB.GetItem", Fault::Throttled).containing("BillingAccounts"));
    let confirmed = app.get(&app.confirmation_path(&email).await, "application/json", None).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);

    // The job runs after the wait and fails (three tries of the read).
    for _ in 0..150 {
        if proxy.faulted("DynamoDB.GetItem") >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(proxy.faulted("DynamoDB.GetItem") >= 3, "the job ran");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pending = app.login(&email, PASSWORD).await;
    assert_eq!(pending.code(), "identification_pending", "{}", pending.text);
    let message = pending.json()["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("задерживается из-за временной неполадки на нашей стороне"), "{message}");
    let sqs = aws_sdk_sqs::Client::new(&local_stack::local_aws(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&app.stack.names["IdentifyQueue"])
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let waiting = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
        .cloned();
    assert_eq!(waiting.as_deref(), Some("1"), "the job waits on its queue for a retry");

    proxy.clear();
    account_opens(&app, &email, PASSWORD).await;
    let opened = app.letters_to(&email).await.into_iter().filter(|l| !l.text.contains("/confirm?token=")).count();
    assert_eq!(opened, 1, "one letter says the cabinet is open");
}

/// The identification job's claim on the "cabinet is open" letter (a
/// conditional write, so that duplicate deliveries send one letter) loses
/// its answer once: the SDK's retry finds the claim taken, by the same
/// job. The letter still goes, once.
#[tokio::test]
async fn the_cabinet_is_open_letter_goes_once_when_its_claims_answer_is_lost() {
    let proxy = start_fault_proxy().await;
    let app = app_behind(&proxy).await;
    let email = unique_email();
    proxy.add(Rule::new("DynamoDB.UpdateItem", Fault::LoseAnswer).containing("outcome_letter_claimed_at").times(1));
    let confirmed = app.register_and_confirm(&email).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    account_opens(&app, &email, PASSWORD).await;
    assert_eq!(proxy.faulted("DynamoDB.UpdateItem"), 1, "the claim's answer was lost");
    let started = Instant::now();
    let mut opened = 0;
    while opened == 0 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        opened = app.letters_to(&email).await.iter().filter(|l| !l.text.contains("/confirm?token=")).count();
    }
    assert_eq!(opened, 1, "one letter says the cabinet is open");
}

/// The billing import: throttled (S3 `SlowDown`, DynamoDB) and failing
/// twice per call it loads everything; unable to read the file for good, it ends in an
/// `import_failed` report and changes nothing; uploaded again once the
/// fault clears, the file loads.
#[tokio::test]
async fn the_import_rides_out_throttling_and_reports_a_lasting_fault() {
    let proxy = start_fault_proxy().await;
    let app = app_behind(&proxy).await;
    let file = "Лицевой счёт;ФИО;Адрес;Сальдо\n600001;Кузнецов Андрей Викторович;г. Москва, ул. Лесная, д. 1;10,00\n";

    proxy.next(2, "S3.GetObject", Fault::Throttled);
    proxy.next(2, "DynamoDB.BatchGetItem", Fault::ServerError);
    proxy.next(2, "DynamoDB.BatchWriteItem", Fault::Throttled);
    let report: Value =
        serde_json::from_str(&app.stack.upload_billing_bytes("first.csv", file.into()).await.unwrap()).unwrap();
    assert_eq!(report["status"], "loaded", "{report:#}");
    assert_eq!(report["loaded"], 1, "{report:#}");
    let faulted = ["S3.GetObject", "DynamoDB.BatchGetItem", "DynamoDB.BatchWriteItem"].map(|o| proxy.faulted(o));
    assert_eq!(faulted, [2, 2, 2]);

    let changed = file.replace("600001", "600002");
    proxy.always("S3.GetObject", Fault::ServerError);
    let report: Value =
        serde_json::from_str(&app.stack.upload_billing_bytes("second.csv", changed.clone().into()).await.unwrap())
            .unwrap();
    assert_eq!(report["status"], "import_failed", "{report:#}");
    let billing = app.stack.table_items("BillingAccountsTable").await.unwrap();
    assert!(!billing.iter().any(|b| b.to_string().contains("600002")), "nothing loaded");

    proxy.clear();
    let report: Value =
        serde_json::from_str(&app.stack.upload_billing_bytes("second.csv", changed.into()).await.unwrap()).unwrap();
    assert_eq!(report["status"], "loaded", "{report:#}");
}

/// A failed call is logged with AWS's error code and the request id AWS
/// gave its answer, so ops can tell throttling from an outage and quote
/// the id to AWS support.
#[tokio::test]
async fn a_failed_call_is_logged_with_awss_error_code_and_request_id() {
    let logs = captured_logs();
    let proxy = start_fault_proxy().await;
    let app = app_behind(&proxy).await;
    let request_ids = |operation: &str| -> Vec<String> {
        proxy.calls().iter().filter(|c| c.operation == operation).filter_map(|c| c.request_id.clone()).collect()
    };

    proxy.always("DynamoDB.TransactWriteItems", Fault::Throttled);
    assert_unavailable(&app.register(&unique_email()).await, "throttled registration");
    let ids = request_ids("DynamoDB.TransactWriteItems");
    assert_eq!(ids.len(), 3, "three attempts");
    let lines = logs.lines();
    let failed = lines
        .iter()
        .find(|l| l["fields"]["aws_request_id"].as_str().is_some_and(|id| ids.iter().any(|i| i == id)))
        .unwrap_or_else(|| panic!("no log line with the request id of {ids:?}"));
    assert_eq!(failed["fields"]["aws_code"], "ThrottlingException", "{failed}");
    assert_eq!(failed["fields"]["transient"], true, "{failed}");
    assert_eq!(failed["level"], "ERROR", "{failed}");

    proxy.clear();
    proxy.always("SES.SendEmail", Fault::ServerError);
    let registered = app.register(&unique_email()).await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
    let ids = request_ids("SES.SendEmail");
    let lines = logs.lines();
    let refused = lines
        .iter()
        .find(|l| l["fields"]["error"].as_str().is_some_and(|e| ids.iter().any(|id| e.contains(id.as_str()))))
        .unwrap_or_else(|| panic!("no log line with the request id of {ids:?}"));
    let error = refused["fields"]["error"].as_str().unwrap();
    assert!(error.contains("AWS InternalFailure, HTTP 500, request "), "{error}");
}

/// Another transaction changing one of the items at the same moment
/// (`TransactionConflict`), or an item throttled inside a transaction, says
/// nothing about the data: the transaction is tried again. The reset link
/// goes out, the new password is stored; while the conflict lasts the
/// resident gets a 503 and the link keeps working, never "link already
/// used".
#[tokio::test]
async fn a_conflicting_transaction_is_tried_again_and_never_answered_as_a_used_link() {
    let proxy = start_fault_proxy().await;
    let app = app_behind(&proxy).await;
    let email = unique_email();
    app.active_resident(&email).await;
    let transactions = || proxy.faulted("DynamoDB.TransactWriteItems");

    // Issuing the reset link conflicts once: the letter goes all the same.
    let conflict = Fault::Cancelled(&["TransactionConflict", "None"]);
    proxy.add(Rule::new("DynamoDB.TransactWriteItems", conflict.clone()).containing("RESET#").times(1));
    let asked = app.post_json("/password/forgot", &json!({"login": email})).await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.text);
    assert_eq!(transactions(), 1);
    let token = app.reset_token(&email).await;
    let new_password = "зелёный троллейбус";
    let reset = json!({"token": token, "password": new_password, "password_confirm": new_password});

    // The new password conflicts for good: a 503, and nothing is used up.
    proxy.always("DynamoDB.TransactWriteItems", Fault::Cancelled(&["None", "TransactionConflict"]));
    let refused = app.post_json("/password/reset", &reset).await;
    assert_unavailable(&refused, "new password, conflicting for good");
    assert!(!refused.text.contains("уже использована"), "{}", refused.text);
    assert!(transactions() > 2, "tried again: {}", transactions());
    proxy.clear();
    assert_eq!(app.login(&email, PASSWORD).await.status, StatusCode::OK, "the old password still holds");

    // A conflict, then throttling inside the transaction: tried again, done.
    let before = transactions();
    proxy.add(Rule::new("DynamoDB.TransactWriteItems", Fault::Cancelled(&["TransactionConflict", "None"])).times(1));
    proxy.add(Rule::new("DynamoDB.TransactWriteItems", Fault::Cancelled(&["None", "ThrottlingError"])).times(1));
    let done = app.post_json("/password/reset", &reset).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(transactions(), before + 2);
    account_opens(&app, &email, new_password).await;
}

/// A login's transaction holds its lock items for a moment; a single write
/// to one of them meanwhile is refused with `TransactionConflictException`,
/// which the SDK does not retry. Found by review: a password reset then
/// stored the new password but answered 500, with the locks, the audit
/// record and the letter left undone; a right password after a burst of
/// wrong ones through `POST /email` answered 503. Twice each, it must go
/// unnoticed.
#[tokio::test]
async fn a_lock_held_by_a_login_transaction_is_waited_for() {
    let proxy = start_fault_proxy().await;
    let app = app_behind(&proxy).await;
    let email = unique_email();
    app.active_resident(&email).await;
    let conflict = Fault::Error { status: 400, code: "TransactionConflictException" };

    // Two wrong passwords leave records in the locks the reset clears.
    for _ in 0..2 {
        assert_eq!(app.login(&email, "подбираю пароль").await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.post_json("/password/forgot", &json!({"login": email})).await.status, StatusCode::ACCEPTED);
    let token = app.reset_token(&email).await;
    let new_password = "зелёный троллейбус";
    let reset = json!({"token": token, "password": new_password, "password_confirm": new_password});
    proxy.add(Rule::new("DynamoDB.DeleteItem", conflict).containing("LOCK#").times(2));
    let done = app.post_json("/password/reset", &reset).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(proxy.faulted("DynamoDB.DeleteItem"), 2);
    proxy.clear();
    account_opens(&app, &email, new_password).await;
}
