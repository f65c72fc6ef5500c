#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

//! Attacks on the round-trip cuts of 8cce429 and 2f88cff: registration's
//! counters, name check and reads in one round; confirmation without the
//! resident read; login's lookup, locks and resident read at once. A
//! failing probe here is a defect found.

use std::net::IpAddr;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use cabinet::domain::AccountNumber;
use cabinet::limits::Subject;
use e2e::fault_proxy::Fault;
use e2e::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ACCOUNT: &str = "100200300";
const WRONG: &str = "подбираю пароль";

/// A client whose requests come from `ip` (any 127.x.y.z reaches the local
/// server), so that per-address limits can be told apart.
fn client_from(app: &TestApp, ip: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", app.stack.url.parse().unwrap());
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn answer_of(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Answer { status, headers, text }
}

async fn post_from(app: &TestApp, client: &reqwest::Client, path: &str, body: &Value) -> Answer {
    answer_of(client.post(format!("{}{path}", app.stack.url)).json(body).send().await.unwrap()).await
}

/// A login with an optional cookie header.
async fn login_with(app: &TestApp, login: &str, password: &str, cookie: Option<&str>) -> Answer {
    let mut request =
        app.client.post(format!("{}/login", app.stack.url)).json(&json!({"login": login, "password": password}));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    answer_of(request.send().await.unwrap()).await
}

async fn count_events(app: &TestApp, event: &str) -> usize {
    audit_events(app).await.iter().filter(|e| *e == event).count()
}

/// The failures the resident lock of `account` holds (0: no record).
async fn resident_failures(app: &TestApp, account: &str) -> u32 {
    let subject = Subject::Resident(AccountNumber::parse(account).unwrap());
    app.stack.services.store.counters.lock_record(&subject).await.unwrap().map_or(0, |r| r.failures)
}

async fn dynamodb() -> aws_sdk_dynamodb::Client {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    aws_sdk_dynamodb::Client::new(&local_stack::local_aws(&endpoint).await)
}

fn residents_table(app: &TestApp) -> String {
    app.stack.names["ResidentsTable"].clone()
}

/// Sets (or, with `None`, removes) attribute `name` of the item `pk`.
async fn set_attribute(app: &TestApp, pk: &str, name: &str, value: Option<AttributeValue>) {
    let update =
        dynamodb().await.update_item().table_name(residents_table(app)).key("pk", AttributeValue::S(pk.to_owned()));
    let update = match value {
        Some(value) => update
            .update_expression("SET #a = :v")
            .expression_attribute_names("#a", name)
            .expression_attribute_values(":v", value),
        None => update.update_expression("REMOVE #a").expression_attribute_names("#a", name),
    };
    update.send().await.unwrap();
}

fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The sorted DynamoDB actions of one wrong-password login, without audit
/// and mail.
async fn login_actions(app: &TestApp, login: &str) -> Vec<String> {
    let before = app.stack.calls.all().len();
    let answer = app.login(login, WRONG).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{login}: {}", answer.text);
    let mut actions: Vec<String> = app.stack.calls.all()[before..]
        .iter()
        .filter(|c| c.function == "login" && !c.action.contains("Audit") && c.resource != "ses")
        .map(|c| c.action.clone())
        .collect();
    actions.sort();
    actions
}

/// Attacks the new first round of login by account number: a known
/// account number is answered from the BatchGetItem alone, while an
/// unknown one (and an e-mail) costs a second read of the decoy key. Before
/// 2f88cff both account-number cases made the same calls, so the calls
/// (and their time) now tell a registered account number from one that is
/// not.
#[tokio::test]
async fn a_known_account_number_costs_the_same_calls_as_an_unknown_one() {
    let app = spawn_app().await;
    app.active_resident(&unique_email()).await;
    let known = login_actions(&app, "100 200 300").await;
    // In the billing data, never registered; and not in it at all.
    let unregistered = login_actions(&app, "100 200 301").await;
    let unknown = login_actions(&app, "100 200 399").await;
    assert_eq!(known, unregistered, "a registered account number vs an unregistered one");
    assert_eq!(known, unknown, "a registered account number vs an unknown one");
}

/// The DynamoDB actions (sorted, without audit and mail) and the rounds
/// of one wrong-password login.
async fn login_cost(app: &TestApp, login: &str) -> (Vec<String>, usize) {
    let before = app.stack.calls.operations().len();
    let actions = login_actions(app, login).await;
    let made: Vec<local_stack::recorder::Operation> = app
        .stack
        .calls
        .operations()
        .into_iter()
        .skip(before)
        .filter(|o| o.function == "login" && !o.name.contains("Audit") && !o.name.contains("SES"))
        .collect();
    (actions, local_stack::recorder::sequential_rounds(&made))
}

/// Attacks the blind first write of the lock admission (2f88cff): it
/// assumes no lock record, and when there is one it fails, reads, and
/// swaps, two more requests and rounds. One wrong password typed with the
/// account number leaves a record on the resident's own lock; the first
/// login then typed with their address meets that record, an unknown
/// address does not. The calls (and the time) of one login tell which
/// address goes with the account number, which the silent lock exists to
/// hide.
#[tokio::test]
async fn the_lock_admission_does_not_tell_which_email_goes_with_an_account() {
    let app = spawn_app().await;
    let email = unique_email();
    app.active_resident(&email).await;
    assert_eq!(app.login("100 200 300", WRONG).await.status, StatusCode::UNAUTHORIZED);
    let theirs = login_cost(&app, &email).await;
    let someone_elses = login_cost(&app, &unique_email()).await;
    assert_eq!(theirs, someone_elses, "(actions, rounds) of the resident's address vs another address");
}

/// Guards the e-mail side of the same: a known address and an unknown one
/// make the same calls, and get the same answer (status, body, cookies).
#[tokio::test]
async fn a_known_email_and_an_unknown_one_look_the_same() {
    let app = spawn_app().await;
    let email = unique_email();
    app.active_resident(&email).await;
    assert_eq!(login_actions(&app, &email).await, login_actions(&app, &unique_email()).await);
    let known = app.login(&email.to_uppercase(), WRONG).await;
    let unknown = app.login(&unique_email(), WRONG).await;
    assert_eq!((known.status, &known.text), (unknown.status, &unknown.text));
    let cookies = |a: &Answer| a.headers.get_all("set-cookie").iter().count();
    assert_eq!(cookies(&known), cookies(&unknown));
}

/// Registers `account` under `email` (unconfirmed), then lets the
/// registration expire as DynamoDB's TTL would: the resident and the
/// claim of the address get an `expires_at` in the past.
async fn expired_registration(app: &TestApp, email: &str) {
    assert_eq!(app.register(email).await.status, StatusCode::CREATED);
    let past = AttributeValue::N((now_s() - 60).to_string());
    set_attribute(app, &format!("RESIDENT#{ACCOUNT}"), "expires_at", Some(past.clone())).await;
    set_attribute(app, &format!("EMAIL#{email}"), "expires_at", Some(past)).await;
}

/// Attacks login's guess of the subjects from the e-mail claim: an address
/// left by an expired registration still claims the account, which has
/// been registered again with another address. A login with the stale
/// address is an unknown login; counted first under the account's own
/// resident lock and given back only when no other attempt moved it on,
/// a burst of them leaves failures on the new resident's lock, locking
/// them out of their own (correct) password.
#[tokio::test]
async fn a_stale_email_claim_never_counts_against_the_account_it_points_at() {
    let app = spawn_app().await;
    let stale = unique_email();
    expired_registration(&app, &stale).await;
    let current = unique_email();
    app.active_resident(&current).await;
    assert_eq!(resident_failures(&app, ACCOUNT).await, 0);

    let answers = futures::future::join_all((0..20).map(|_| app.login(&stale, WRONG))).await;
    for answer in &answers {
        assert!([StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&answer.status), "{}", answer.text);
    }
    let failures = resident_failures(&app, ACCOUNT).await;
    // One typo of the resident's own, then their right password.
    assert_eq!(app.login(&current, WRONG).await.status, StatusCode::UNAUTHORIZED);
    let own = app.login("100 200 300", PASSWORD).await;
    assert_eq!(
        (failures, own.status),
        (0, StatusCode::OK),
        "logins with an address the resident never had left {failures} failures on their lock; \
         after one typo of theirs, their right password: {}",
        own.text
    );
}

/// Guards the lock against a burst: 20 wrong passwords at once on the
/// address, then on the account number. No more than the schedule's five
/// get through each visible lock; the resident's own lock ends at five,
/// and the right password is refused under either identifier.
#[tokio::test]
async fn a_burst_of_wrong_passwords_locks_the_resident_under_every_identifier() {
    let app = spawn_app().await;
    let email = unique_email();
    app.active_resident(&email).await;
    let answers = futures::future::join_all((0..20).map(|_| app.login(&email, WRONG))).await;
    let refused = answers.iter().filter(|a| a.status == StatusCode::UNAUTHORIZED).count();
    let limited = answers.iter().filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(refused + limited, 20, "{:?}", answers.iter().map(|a| a.status).collect::<Vec<_>>());
    assert!(refused <= 5, "{refused} wrong passwords got past a lock of five");
    // Each failure verified is on the resident's lock (an attempt let past
    // the address's lock but not the resident's is answered 401 unverified,
    // so there may be fewer than 401s).
    let failures = resident_failures(&app, ACCOUNT).await;
    assert!((1..=5).contains(&failures), "{failures}");
    assert_eq!(app.login(&email, PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
    if failures == 5 {
        // The account number's own lock is open, the resident's is not:
        // the right password is answered as a wrong one.
        let by_number = app.login("100 200 300", PASSWORD).await;
        assert_eq!(by_number.status, StatusCode::UNAUTHORIZED, "{}", by_number.text);
    }

    // The same burst split over both identifiers.
    let app = spawn_app().await;
    let email = unique_email();
    app.active_resident(&email).await;
    let logins = (0..20).map(|i| if i % 2 == 0 { email.clone() } else { "100200300".to_owned() });
    let answers = futures::future::join_all(logins.map(|login| {
        let app = &app;
        async move { app.login(&login, WRONG).await }
    }))
    .await;
    assert!(answers.iter().all(|a| a.status != StatusCode::OK));
    let failures = resident_failures(&app, ACCOUNT).await;
    assert!((1..=5).contains(&failures), "{failures}");
    for login in [email.as_str(), "100 200 300"] {
        let right = app.login(login, PASSWORD).await;
        assert_ne!(right.status, StatusCode::OK, "{login}: a locked resident's right password was accepted");
    }
}

/// Attacks login's verdict written after the password is verified: right
/// and wrong passwords at once, one failure short of the lock. Each answer
/// must be that of its attempt judged in some order, one after another: a
/// wrong password answered only once counted (so no more than the lock's
/// one failure before the first success, five after each), a right one
/// accepted only while the lock is open, and every failure told is one
/// audited, no more, no fewer.
#[tokio::test]
async fn right_and_wrong_passwords_at_once_are_judged_one_after_another() {
    let app = spawn_app().await;
    let email = unique_email();
    app.active_resident(&email).await;
    for _ in 0..4 {
        assert_eq!(app.login(&email, WRONG).await.status, StatusCode::UNAUTHORIZED);
    }
    let passwords = (0..20).map(|i| if i % 2 == 0 { WRONG } else { PASSWORD });
    let answers = futures::future::join_all(passwords.map(|password| {
        let (app, email) = (&app, &email);
        async move { (password, app.login(email, password).await.status) }
    }))
    .await;
    let count = |password: &str, status: StatusCode| answers.iter().filter(|a| **a == (password, status)).count();
    let (refused, accepted) = (count(WRONG, StatusCode::UNAUTHORIZED), count(PASSWORD, StatusCode::OK));
    let limited = count(WRONG, StatusCode::TOO_MANY_REQUESTS) + count(PASSWORD, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused + accepted + limited, 20, "an answer no order gives: {answers:?}");
    assert!(refused <= 1 + 5 * accepted, "{refused} failures told around {accepted} successes: {answers:?}");
    assert_eq!(count_events(&app, "login_failed").await, 4 + refused, "failures audited vs told: {answers:?}");
    assert!(resident_failures(&app, ACCOUNT).await <= 5);
}

/// Attacks login's guess from the device cookie: a cookie from before a
/// password reset is taken for current in the first round (its account
/// matches, the epoch is not read yet). A burst of guesses through it must
/// still count under the address and the resident, as without a cookie:
/// the right (new) password then opens nothing, under either identifier.
#[tokio::test]
async fn a_device_cookie_from_before_a_reset_gives_no_extra_guesses() {
    let app = spawn_app().await;
    let email = unique_email();
    app.active_resident(&email).await;
    let first = app.login(&email, PASSWORD).await;
    let device = cookie_named(&first, "device").expect("a device cookie");

    assert_eq!(app.post_json("/password/forgot", &json!({"login": email})).await.status, StatusCode::ACCEPTED);
    let token = app.reset_token(&email).await;
    let new_password = "зелёный троллейбус";
    let body = json!({"token": token, "password": new_password, "password_confirm": new_password});
    assert_eq!(app.post_json("/password/reset", &body).await.status, StatusCode::OK);

    let answers =
        futures::future::join_all((0..20).map(|_| login_with(&app, &email, WRONG, Some(device.as_str())))).await;
    let refused = answers.iter().filter(|a| a.status == StatusCode::UNAUTHORIZED).count();
    assert!(refused <= 5, "{refused} wrong passwords got past a lock of five with a stale device cookie");
    let failures = resident_failures(&app, ACCOUNT).await;
    assert!((1..=5).contains(&failures), "the attempts count under the resident: {failures}");
    // The address's lock holds, stale cookie or not.
    let right = login_with(&app, &email, new_password, Some(device.as_str())).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS, "{}", right.text);
    if failures == 5 {
        let right = app.login("100 200 300", new_password).await;
        assert_eq!(right.status, StatusCode::UNAUTHORIZED, "{}", right.text);
    }
}

/// A registration of `account` in the name `full_name` under a new address.
fn registration_of(account: &str, full_name: &str) -> Value {
    let mut body = registration(&unique_email());
    body["account"] = json!(account);
    body["full_name"] = json!(full_name);
    body
}

/// Uses up the registration limit of the address `ip` (30 an hour).
async fn past_its_limit(app: &TestApp, ip: &str) -> reqwest::Client {
    let client = client_from(app, ip);
    for _ in 0..30 {
        assert_eq!(post_from(app, &client, "/register", &json!({})).await.status, StatusCode::BAD_REQUEST);
    }
    client
}

/// Attacks registration's first round, where the account's counter is
/// taken alongside the address's: a flood from an address past its own
/// limit (every request answered 429 for the address) drives up the
/// account's count while in flight, and the resident, from another
/// address, is refused 429 with the right name: one address past its limit
/// keeps an account from being registered for as long as it floods.
#[tokio::test]
async fn a_flood_past_its_address_limit_does_not_refuse_the_account_to_others() {
    let app = spawn_app().await;
    let account = "100200301";
    let payer = "Салтыков-Щедрин Михаил Евграфович";
    let attacker = past_its_limit(&app, "127.0.0.2").await;
    let flood = futures::future::join_all((0..60).map(|_| {
        let (app, attacker) = (&app, &attacker);
        async move { post_from(app, attacker, "/register", &registration_of(account, payer)).await }
    }));
    let resident = client_from(&app, "127.0.0.3");
    let registering = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        post_from(&app, &resident, "/register", &registration_of(account, payer)).await
    };
    let (flooded, registered) = tokio::join!(flood, registering);
    assert!(flooded.iter().all(|a| a.status == StatusCode::TOO_MANY_REQUESTS), "the flood is past its limit");
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
}

/// Attacks the name check taken in registration's first round, before the
/// rate limits are known: requests from an address past its limit (all
/// answered 429, their names never compared) take the account's name
/// checks while in flight. The resident's tenth try, within the budget of
/// ten, made meanwhile, is then over it and pauses the account for a day
/// instead of being compared.
#[tokio::test]
async fn rate_limited_registrations_never_spend_the_name_checks() {
    let app = spawn_app().await;
    let account = "100200301";
    let payer = "Салтыков-Щедрин Михаил Евграфович";
    let attacker = past_its_limit(&app, "127.0.0.2").await;
    let resident = client_from(&app, "127.0.0.3");
    for i in 0..9 {
        let body = registration_of(account, &format!("Салтыков Михаил{}", "а".repeat(i + 1)));
        assert_eq!(post_from(&app, &resident, "/register", &body).await.code(), "name_mismatch");
    }
    // A wave of ten: with the resident's nine and their tenth, the
    // account's own counter stays within its limit of 20.
    let wave = futures::future::join_all((0..10).map(|_| {
        let (app, attacker) = (&app, &attacker);
        async move { post_from(app, attacker, "/register", &registration_of(account, payer)).await }
    }));
    let right = registration_of(account, payer);
    let tenth = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        post_from(&app, &resident, "/register", &right).await
    };
    let (waved, tenth) = tokio::join!(wave, tenth);
    assert!(waved.iter().all(|a| a.status == StatusCode::TOO_MANY_REQUESTS), "the wave is past its limit");
    assert_eq!(tenth.status, StatusCode::CREATED, "the tenth try, with the right name: {}", tenth.text);
    assert_eq!(count_events(&app, "registration_paused").await, 0);
}

/// Guards the name check's budget, in turn: attempts refused before the
/// name is compared (rate limited, or with a right name) spend none of it;
/// ten mismatches do, and pause the account.
#[tokio::test]
async fn only_mismatched_names_spend_the_budget() {
    let app = spawn_app().await;
    let account = "100200302";
    let payer = "Фёдорова Алёна Петровна";
    let limited = client_from(&app, "127.0.0.5");
    for _ in 0..30 {
        assert_eq!(post_from(&app, &limited, "/register", &json!({})).await.status, StatusCode::BAD_REQUEST);
    }
    for i in 0..12 {
        let body = registration_of(account, &format!("Фёдорова Алён{}", "а".repeat(i + 1)));
        assert_eq!(post_from(&app, &limited, "/register", &body).await.status, StatusCode::TOO_MANY_REQUESTS);
    }
    let guesser = client_from(&app, "127.0.0.6");
    for i in 0..10 {
        let body = registration_of(account, &format!("Фёдорова Алёнушк{}", "а".repeat(i + 1)));
        let answer = post_from(&app, &guesser, "/register", &body).await;
        assert_eq!(answer.code(), "name_mismatch", "mistake {}: {}", i + 1, answer.text);
    }
    let paused = post_from(&app, &guesser, "/register", &registration_of(account, payer)).await;
    assert_eq!(paused.code(), "registration_paused", "{}", paused.text);
}

/// Attacks registration's first round under a fault of ours: the name
/// check is taken alongside the reads, and when a read fails (the billing
/// data's, here) the request answers 503 without giving it back. Faults
/// of ours must not spend the account's name checks: once the fault
/// clears, the payer registers instead of finding the account paused.
#[tokio::test]
async fn faults_of_ours_never_spend_the_name_checks() {
    let proxy = start_fault_proxy().await;
    let app = spawn_app_with(|o| {
        o.function_endpoint = Some(proxy.url.clone());
        o.timeouts = cabinet::services::lambda_timeouts();
    })
    .await;
    proxy.always("DynamoDB.GetItem", Fault::ServerError);
    for _ in 0..11 {
        let answer = app.register(&unique_email()).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.text);
    }
    proxy.clear();
    let registered = app.register(&unique_email()).await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
}

/// Guards the name check's reservation under a burst: twenty wrong names
/// for one account at once get at most ten comparisons (answered
/// `name_mismatch`), the rest pause the account (audited), and the right
/// name is then refused too.
#[tokio::test]
async fn a_burst_of_name_guesses_gets_no_more_comparisons_than_the_budget() {
    let app = spawn_app().await;
    let account = "100200302";
    let answers = futures::future::join_all((0..20).map(|i| {
        let app = &app;
        async move {
            let body = registration_of(account, &format!("Фёдорова Алён{}", "а".repeat(i + 1)));
            app.post_json("/register", &body).await
        }
    }))
    .await;
    let codes: Vec<String> = answers.iter().map(Answer::code).collect();
    let compared = codes.iter().filter(|c| *c == "name_mismatch").count();
    assert!(compared <= 10, "{compared} names compared: {codes:?}");
    assert!(codes.iter().all(|c| c == "name_mismatch" || c == "registration_paused"), "{codes:?}");
    assert!(count_events(&app, "registration_paused").await >= 1);
    // The right name is refused now (paused, or past the account's 20 an
    // hour): never registered.
    let right = app.post_json("/register", &registration_of(account, "Фёдорова Алёна Петровна")).await;
    assert!(["registration_paused", "rate_limited"].contains(&right.code().as_str()), "{}", right.text);
}

/// The name checks of `account` still counted (0: none).
async fn name_checks(app: &TestApp, account: &str) -> i64 {
    let items = app.stack.table_items("ResidentsTable").await.unwrap();
    let prefix = format!("RATE#name-mismatch#{account}#");
    items
        .iter()
        .filter(|i| i["pk"].as_str().is_some_and(|pk| pk.starts_with(&prefix)))
        .map(|i| i["hits"].as_i64().unwrap_or_default())
        .sum()
}

/// Guards the give-back of the name check: five registrations of one
/// account with the right name at once (one registers, the others are
/// refused as registered) and one of an account not in the billing data
/// leave no name check spent.
#[tokio::test]
async fn right_names_at_once_spend_no_name_checks() {
    let app = spawn_app().await;
    let answers = futures::future::join_all((0..5).map(|_| {
        let app = &app;
        async move { app.register(&unique_email()).await }
    }))
    .await;
    let created = answers.iter().filter(|a| a.status == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{:?}", answers.iter().map(|a| a.text.clone()).collect::<Vec<_>>());
    assert_eq!(name_checks(&app, ACCOUNT).await, 0);
    let unknown = app.post_json("/register", &registration_of("100200399", "Иванов Иван Иванович")).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", unknown.text);
    assert_eq!(name_checks(&app, "100200399").await, 0);
}

/// The CONFIRM# item of the newest confirmation link of `account`.
async fn confirmation_items(app: &TestApp) -> Vec<Value> {
    let items = app.stack.table_items("ResidentsTable").await.unwrap();
    items.into_iter().filter(|i| i["pk"].as_str().is_some_and(|pk| pk.starts_with("CONFIRM#"))).collect()
}

async fn status_of(app: &TestApp) -> String {
    let items = app.stack.table_items("ResidentsTable").await.unwrap();
    let resident = items.iter().find(|i| i["pk"] == format!("RESIDENT#{ACCOUNT}")).expect("the resident");
    resident["status"].as_str().unwrap().to_owned()
}

/// Attacks the one-transaction confirmation: a link opened five times at
/// once confirms once; every opening is answered 200; exactly one
/// `email_confirmed` record.
#[tokio::test]
async fn a_link_opened_at_once_confirms_once() {
    let app = spawn_app().await;
    let email = unique_email();
    assert_eq!(app.register(&email).await.status, StatusCode::CREATED);
    let path = app.confirmation_path(&email).await;
    let answers = futures::future::join_all((0..5).map(|_| app.get(&path, "application/json", None))).await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    assert_eq!(count_events(&app, "email_confirmed").await, 1);
    assert_ne!(status_of(&app).await, "awaiting_email_confirmation");
    let again = app.get(&path, "application/json", None).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(count_events(&app, "email_confirmed").await, 1);
}

/// Attacks the fallback for links stored before they kept their address:
/// a record without `email` and `used` still confirms (through the
/// resident's record), once, audited once, even opened twice at once.
#[tokio::test]
async fn a_link_without_its_address_confirms_once() {
    let app = spawn_app().await;
    let email = unique_email();
    assert_eq!(app.register(&email).await.status, StatusCode::CREATED);
    let path = app.confirmation_path(&email).await;
    let links = confirmation_items(&app).await;
    assert_eq!(links.len(), 1, "{links:?}");
    let pk = links[0]["pk"].as_str().unwrap();
    set_attribute(&app, pk, "email", None).await;
    set_attribute(&app, pk, "used", None).await;
    let answers = futures::future::join_all((0..2).map(|_| app.get(&path, "application/json", None))).await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
    assert_eq!(count_events(&app, "email_confirmed").await, 1);
    assert_ne!(status_of(&app).await, "awaiting_email_confirmation");
}

/// Attacks the fresh-link path's order (the job queued before the
/// transaction that may not apply): opening a link to an address the
/// registration has left must not queue identification jobs. Before
/// 8cce429 the resident was read first and nothing was queued; now each
/// opening of such a link (by whoever holds the mailbox the resident
/// mistyped) puts a job on the queue.
#[tokio::test]
async fn a_link_to_a_left_address_queues_nothing() {
    let app = spawn_app().await;
    let old = unique_email();
    assert_eq!(app.register(&old).await.status, StatusCode::CREATED);
    let old_path = app.confirmation_path(&old).await;
    let moved = app.post_json("/email", &json!({"login": old, "password": PASSWORD, "email": unique_email()})).await;
    assert!(moved.status.is_success(), "{}", moved.text);
    let before = app.stack.calls.all().len();
    for _ in 0..3 {
        assert!(!app.get(&old_path, "application/json", None).await.status.is_success());
    }
    let queued: Vec<String> = app.stack.calls.all()[before..]
        .iter()
        .filter(|c| c.function == "confirm-email" && c.action.starts_with("sqs:"))
        .map(|c| c.action.clone())
        .collect();
    assert!(queued.is_empty(), "a link that confirms nothing queued {queued:?}");
}

/// Attacks the fresh-link path with links that no longer apply: one sent
/// to an address the registration has left, and one past its expiry. No
/// confirmation, no `email_confirmed` record; the link to the current
/// address then confirms once.
#[tokio::test]
async fn links_that_no_longer_apply_neither_confirm_nor_audit() {
    let app = spawn_app().await;
    let old = unique_email();
    assert_eq!(app.register(&old).await.status, StatusCode::CREATED);
    let old_path = app.confirmation_path(&old).await;
    let new = unique_email();
    let moved = app.post_json("/email", &json!({"login": old, "password": PASSWORD, "email": new})).await;
    assert!(moved.status.is_success(), "{}", moved.text);
    let answer = app.get(&old_path, "application/json", None).await;
    assert!(!answer.status.is_success(), "a link to the old address: {}", answer.text);
    assert_eq!(status_of(&app).await, "awaiting_email_confirmation");
    assert_eq!(count_events(&app, "email_confirmed").await, 0);

    // The new address's link, expired.
    let new_path = app.confirmation_path(&new).await;
    let before: Vec<String> =
        confirmation_items(&app).await.iter().map(|i| i["pk"].as_str().unwrap().to_owned()).collect();
    for pk in &before {
        set_attribute(&app, pk, "expires_at", Some(AttributeValue::N((now_s() - 5).to_string()))).await;
    }
    let expired = app.get(&new_path, "application/json", None).await;
    assert!(!expired.status.is_success(), "an expired link: {}", expired.text);
    assert_eq!(status_of(&app).await, "awaiting_email_confirmation");
    assert_eq!(count_events(&app, "email_confirmed").await, 0);
}

/// Guards the account page's billing read taken alongside the resident's
/// (8cce429): in a cabinet of several active accounts every line shows its
/// own billing data (not the first account's), and once the first account
/// is no longer its payer's, the page shows the added one's data only.
#[tokio::test]
async fn the_account_page_shows_each_accounts_own_billing_data() {
    const PARKING: &str = "100200310";
    let app = spawn_app().await;
    let file = std::env::temp_dir().join(format!("attack-rt-{}.csv", uuid::Uuid::new_v4().simple()));
    let upload = |rows: String| {
        let (app, file) = (&app, file.clone());
        async move {
            std::fs::write(&file, format!("Лицевой счет;ФИО плательщика;Адрес;Сальдо\n{rows}")).unwrap();
            let report: Value = serde_json::from_str(&app.stack.upload_billing_file(&file).await.unwrap()).unwrap();
            report
        }
    };
    let report =
        upload(format!("{PARKING};Иванов Иван Иванович;г. Москва, ул. Садовая, д. 5, машино-место 12;1 500,00\n"))
            .await;
    assert_eq!(report["loaded"], 1, "{report}");
    let session = app.active_resident(&unique_email()).await;
    let added = app
        .post_json_as("/account/accounts", &json!({"account": PARKING, "full_name": "Иванов Иван Иванович"}), &session)
        .await;
    assert_eq!(added.status, StatusCode::ACCEPTED, "{}", added.text);
    let line = |page: &Value, account: &str| {
        page["accounts"].as_array().unwrap().iter().find(|a| a["account"] == account).cloned().unwrap()
    };
    let mut page = Value::Null;
    for _ in 0..60 {
        let answer = app.get("/account", "application/json", Some(&session)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        page = answer.json();
        if line(&page, PARKING)["status"] == "active" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(line(&page, PARKING)["status"], "active", "{page}");
    assert_eq!(page["account"], ACCOUNT, "{page}");
    assert_eq!(line(&page, ACCOUNT)["address"], "г. Москва, ул. Садовая, д. 5, кв. 12", "{page}");
    assert_eq!(line(&page, PARKING)["address"], "г. Москва, ул. Садовая, д. 5, машино-место 12", "{page}");

    // The flat is sold: the first account is suspended, the parking space
    // stays; the page must not show the new payer's data for the flat.
    let report = upload(format!("{ACCOUNT};Сидоров Пётр Ильич;г. Москва, ул. Садовая, д. 5, кв. 12;0\n")).await;
    assert_eq!(report["residents_suspended"], 1, "{report}");
    let answer = app.get("/account", "application/json", Some(&session)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let page = answer.json();
    let _ = std::fs::remove_file(&file);
    assert_eq!(page["account"], PARKING, "the top fields describe the first active account: {page}");
    assert_eq!(line(&page, ACCOUNT)["address"], Value::Null, "{page}");
    assert!(!page.to_string().contains("Сидоров"), "the new payer's name is never shown: {page}");
}
