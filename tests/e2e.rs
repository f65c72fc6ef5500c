#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! End to end over HTTP against the local stack: moto's server for AWS, the
//! real handler functions on the routes of template.yaml.

use std::collections::BTreeSet;

use cabinet::domain::{AccountNumber, BillingAccount, Email, FullName};
use cabinet::queue::IdentificationJob;
use e2e::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_resident_registers_confirms_waits_logs_in_and_sees_the_account() {
    let app = spawn_app().await;
    let email = unique_email();

    let registered = app.register(&email).await;
    assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
    assert_eq!(registered.json()["status"], "awaiting_email_confirmation");
    assert_eq!(registered.json()["letter_sent"], true);

    let letters = app.letters_to(&email).await;
    assert_eq!(letters.len(), 1);
    assert!(letters[0].html.contains("/confirm?token="), "the HTML part has the link");

    let confirmed = app.get(&app.confirmation_path(&email).await, "application/json", None).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    assert_eq!(confirmed.json()["status"], "awaiting_identification");
    let ready_at = confirmed.json()["ready_at"].as_str().expect("ready_at").to_owned();
    time::OffsetDateTime::parse(&ready_at, &time::format_description::well_known::Rfc3339).expect("RFC 3339");

    let early = app.login(&email, PASSWORD).await;
    assert_eq!(early.status, StatusCode::FORBIDDEN);
    assert_eq!(early.code(), "identification_pending");
    assert_eq!(early.json()["ready_at"], ready_at.as_str());

    let logged_in = app.login_when_ready("100 200 300", PASSWORD).await;
    assert_eq!(logged_in.status, StatusCode::OK, "{}", logged_in.text);
    assert_eq!(logged_in.json()["status"], "active");
    let cookie = logged_in.session_cookie().expect("a session cookie");
    let set_cookie = logged_in.headers.get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default();
    for flag in ["HttpOnly", "Secure", "SameSite=Lax"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }

    let account = app.get("/account", "application/json", Some(&cookie)).await;
    assert_eq!(account.status, StatusCode::OK, "{}", account.text);
    let body = account.json();
    assert_eq!(body["account"], "100200300");
    assert_eq!(body["full_name"], "Иванов Иван Иванович");
    assert_eq!(body["address"], "г. Москва, ул. Садовая, д. 5, кв. 12");
    assert_eq!(body["balance"], 3450.67);
    // Exact, for sums, and as on the bill (issue 11).
    assert_eq!(body["balance_kopecks"], 345_067);
    assert_eq!(body["balance_text"], "3\u{a0}450,67\u{a0}₽");

    let page = app.get("/account", "text/html", Some(&cookie)).await;
    assert!(page.text.contains("3\u{a0}450,67\u{a0}₽"), "{}", page.text);
    // A positive balance is owed, and the page says so (issue 14).
    assert!(page.text.contains("<dt>К оплате</dt><dd>3\u{a0}450,67\u{a0}₽</dd>"), "{}", page.text);

    let subjects: Vec<String> = app.letters_to(&email).await.into_iter().map(|l| l.subject).collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(subjects[1].contains("открыт"), "{subjects:?}");
}

#[tokio::test]
async fn register_reports_every_field_error_at_once() {
    let app = spawn_app().await;
    let answer = app.post_json("/register", &json!({})).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let errors = answer.json()["errors"].as_array().cloned().unwrap_or_default();
    let fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["account", "full_name", "phone", "email", "password", "password_confirm", "consent"]);
    assert!(errors.iter().all(|e| !e["message"].as_str().unwrap_or_default().is_empty()));
}

#[tokio::test]
async fn register_refuses_each_invalid_field_with_its_code() {
    let app = spawn_app().await;
    let cases = [
        ("account", json!("12ab"), "invalid"),
        ("full_name", json!("Иванов"), "invalid"),
        ("phone", json!("12345"), "invalid"),
        ("email", json!("ivanov@"), "invalid"),
        ("password", json!("qwerty123"), "weak_password"),
        ("password_confirm", json!("другой пароль"), "password_mismatch"),
        ("consent", json!(false), "consent_required"),
    ];
    for (field, value, code) in cases {
        let mut body = registration(&unique_email());
        body[field] = value.clone();
        if field == "password" {
            body["password_confirm"] = value;
        }
        let answer = app.post_json("/register", &body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field}: {}", answer.text);
        assert_eq!(answer.json()["errors"][0]["field"], field);
        assert_eq!(answer.code(), code, "{field}");
    }
}

#[tokio::test]
async fn register_returns_account_not_found_for_an_account_missing_from_billing() {
    let app = spawn_app().await;
    let mut body = registration(&unique_email());
    body["account"] = json!("999999");
    let answer = app.post_json("/register", &body).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.code(), "account_not_found");
    assert_eq!(answer.json()["errors"][0]["field"], "account");
}

#[tokio::test]
async fn register_returns_name_mismatch_without_revealing_the_payer() {
    let app = spawn_app().await;
    for name in ["Петров Иван Иванович", "Иванов", "Иванов Пётр Иванович", "Иванов П. И.", "Ivanov Ivan Ivanovich"]
    {
        let mut body = registration(&unique_email());
        body["full_name"] = json!(name);
        let answer = app.post_json("/register", &body).await;
        let code = answer.code();
        assert!(code == "name_mismatch" || (name == "Иванов" && code == "invalid"), "{name}: {}", answer.text);
        assert!(!answer.text.contains("Иван Иванович") || name.contains("Иван Иванович"), "{}", answer.text);
    }
}

#[tokio::test]
async fn register_accepts_the_name_as_residents_really_type_it() {
    let app = spawn_app().await;
    let typed = [
        // Issue 10: these records have full names, so full names are typed
        // (initials match only initials on record, as 100200303 has).
        ("100200300", " иванов  иван  ИВАНОВИЧ "),
        ("100200301", "Салтыков - Щедрин Михаил Евграфович"),
        ("100200302", "ФЕДОРОВА АЛЕНА ПЕТРОВНА"),
        ("100200303", "Петров Пётр Павлович"),
        ("0001234567", "Cмирнова Oльга Hиколаевна\u{200B}"),
    ];
    for (account, name) in typed {
        let mut body = registration(&unique_email());
        body["account"] = json!(account);
        body["full_name"] = json!(name);
        let answer = app.post_json("/register", &body).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{account} {name}: {}", answer.text);
    }
}

#[tokio::test]
async fn names_pasted_with_tabs_and_line_breaks_register_in_both_faces() {
    // Issue 14: copied from a spreadsheet and from a letter.
    let app = spawn_app().await;
    let billing = "Лицевой счет;ФИО плательщика\n700100;Белова Надежда Ивановна\n700101;Зайцев Роман Олегович\n\
                   700102;Белова Надежда Ивановна\n700103;Зайцев Роман Олегович\n";
    app.stack.upload_billing_bytes("issue14.csv", billing.as_bytes().to_vec()).await.expect("the import reports");
    let pasted = [("700100", "Белова\tНадежда\tИвановна"), ("700101", "Зайцев Роман Олегович\n")];
    let tabbed_password = "синий\tтрамвай";
    for (account, name) in pasted {
        let email = unique_email();
        let mut body = registration(&email);
        body["account"] = json!(account);
        body["full_name"] = json!(name);
        body["password"] = json!(tabbed_password);
        body["password_confirm"] = json!(tabbed_password);
        let answer = app.post_json("/register", &body).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{name:?}: {}", answer.text);
        // The password keeps its tab: typed with a space it is another one.
        let path = app.confirmation_path(&email).await;
        assert_eq!(app.get(&path, "application/json", None).await.status, StatusCode::OK);
        assert_eq!(app.login_when_ready(&email, tabbed_password).await.status, StatusCode::OK, "{name:?}");
        assert_eq!(app.login(&email, PASSWORD).await.status, StatusCode::UNAUTHORIZED, "{name:?}");
    }
    for (account, name) in [("700102", "Белова\tНадежда\tИвановна"), ("700103", "Зайцев Роман Олегович\n")]
    {
        let email = unique_email();
        let fields = [
            ("account", account),
            ("full_name", name),
            ("phone", "8 916 123 45 67"),
            ("email", email.as_str()),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("consent", "on"),
        ];
        let answer = app.post_form("/register", &fields).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{name:?}: {}", answer.text);
        assert!(answer.text.contains("Проверьте почту"), "{}", answer.text);
    }
    // Other control characters are still refused, with the field named.
    let mut body = registration(&unique_email());
    body["full_name"] = json!("Иванов\u{1b}Иван Иванович");
    let refused = app.post_json("/register", &body).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(refused.json()["errors"][0]["field"], "full_name");
    assert!(refused.json()["errors"][0]["message"].as_str().unwrap_or_default().contains("«ФИО»"), "{}", refused.text);

    // With the other errors at once, and in the form itself, not on a page
    // of its own: the resident fixes it where it is.
    let email = unique_email();
    let mut form = registration(&email);
    form["full_name"] = json!("Иванов\u{1b}Иван Иванович");
    form["phone"] = json!("12");
    let page = app.post_registration_form(&form).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    assert!(page.text.contains("<form") && page.text.contains("«ФИО»"), "the form, with the error: {}", page.text);
    assert!(page.text.contains(&email), "the other values are kept: {}", page.text);
    assert!(page.text.contains("id=\"phone-error\""), "the phone's own error is shown too: {}", page.text);
    body["phone"] = json!("12");
    let both = app.post_json("/register", &body).await;
    let fields: Vec<_> = both.json()["errors"].as_array().unwrap().iter().map(|e| e["field"].clone()).collect();
    assert!(fields.contains(&json!("full_name")) && fields.contains(&json!("phone")), "{}", both.text);
    assert!(app.letters_to(&email).await.is_empty());
}

#[tokio::test]
async fn an_email_typo_is_refused_before_any_letter_with_every_other_error() {
    let app = spawn_app().await;
    let cases =
        [("mail.ry", "mail.ru"), ("gmial.com", "gmail.com"), ("yandex.ry", "yandex.ru"), ("ьфшд.ru", "mail.ru")];
    let mut addresses = Vec::new();
    for (typo, meant) in cases {
        let local = format!("r{}", uuid::Uuid::new_v4().simple());
        let typed = format!("{local}@{typo}");
        addresses.push(format!("{local}@{meant}"));
        addresses.push(Email::parse(&typed).unwrap().to_string());
        let mut body = registration(&typed);
        let alone = app.post_json("/register", &body).await;
        assert_eq!(alone.status, StatusCode::BAD_REQUEST, "{typo}: {}", alone.text);
        assert_eq!(alone.json()["errors"][0]["field"], "email");
        assert_eq!(alone.code(), "email_suggestion", "{typo}");
        assert_eq!(alone.json()["errors"][0]["suggestion"], format!("{local}@{meant}"));
        // Also when another field is wrong: both in the same answer.
        body["account"] = json!("12ab");
        let both = app.post_json("/register", &body).await;
        let errors = both.json()["errors"].as_array().cloned().unwrap_or_default();
        let codes: Vec<(&str, &str)> =
            errors.iter().map(|e| (e["field"].as_str().unwrap_or(""), e["code"].as_str().unwrap_or(""))).collect();
        assert_eq!(codes, [("account", "invalid"), ("email", "email_suggestion")], "{typo}");
    }
    // Nothing was sent or stored.
    let items = app.stack.table_items("ResidentsTable").await.unwrap();
    assert!(items.iter().all(|i| !i["pk"].as_str().unwrap().starts_with("RESIDENT#")), "{items:?}");
    for address in &addresses {
        assert!(app.letters_to(address).await.is_empty(), "{address}");
    }

    // «Адрес верный»: the typo check is skipped, a missing zone is not.
    let mut body = registration("ivanov.real@mail.ry");
    body["email_as_typed"] = json!(true);
    let refused = app.post_json("/register", &body).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::BAD_REQUEST, "invalid".to_owned()), "{}", refused.text);
    let kept = format!("r{}@gmial.com", uuid::Uuid::new_v4().simple());
    let mut body = registration(&kept);
    body["email_as_typed"] = json!(true);
    let answer = app.post_json("/register", &body).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert_eq!(app.letters_to(&kept).await.len(), 1);
}

#[tokio::test]
async fn the_form_offers_both_ways_out_of_a_typo_and_each_registers() {
    let app = spawn_app().await;
    let typo = format!("r{}@gmial.com", uuid::Uuid::new_v4().simple());
    let fixed = typo.replace("gmial.com", "gmail.com");
    let mut fields = vec![
        ("account", "100200300"),
        ("full_name", "Иванов Иван Иванович"),
        ("phone", "8 916 123 45 67"),
        ("email", typo.as_str()),
        ("password", PASSWORD),
        ("password_confirm", PASSWORD),
        ("consent", "on"),
    ];
    let page = app.post_form("/register", &fields).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.text.contains(&format!("name=\"use_suggestion\" value=\"{fixed}\"")), "{}", page.text);
    assert!(page.text.contains("name=\"email_as_typed\" value=\"true\""), "{}", page.text);
    assert!(page.text.contains(&format!("Исправить на {fixed}")) && page.text.contains("Адрес верный"));
    // A domain that does not exist gets no «Адрес верный».
    let missing = typo.replace("gmial.com", "mail.ry");
    let mut no_zone = fields.clone();
    no_zone[3] = ("email", missing.as_str());
    let page = app.post_form("/register", &no_zone).await;
    assert!(page.text.contains("Исправить на") && !page.text.contains("Адрес верный"), "{}", page.text);

    fields.push(("use_suggestion", fixed.as_str()));
    let fixed_answer = app.post_form("/register", &fields).await;
    assert_eq!(fixed_answer.status, StatusCode::CREATED, "{}", fixed_answer.text);
    assert_eq!(app.letters_to(&fixed).await.len(), 1);
    assert!(app.letters_to(&typo).await.is_empty());

    let other = format!("r{}@gmial.com", uuid::Uuid::new_v4().simple());
    let as_typed = [
        ("account", "100200301"),
        ("full_name", "Салтыков-Щедрин Михаил Евграфович"),
        ("phone", "8 916 123 45 67"),
        ("email", other.as_str()),
        ("password", PASSWORD),
        ("password_confirm", PASSWORD),
        ("consent", "on"),
        ("email_as_typed", "true"),
    ];
    let kept = app.post_form("/register", &as_typed).await;
    assert_eq!(kept.status, StatusCode::CREATED, "{}", kept.text);
    assert_eq!(app.letters_to(&other).await.len(), 1);
}

#[tokio::test]
async fn the_address_kept_as_typed_is_carried_while_another_field_is_corrected() {
    // Issue 14: «Адрес верный» pressed with the passwords not typed again;
    // the form comes back for them and must not ask about the address again.
    let app = spawn_app().await;
    let typo = format!("r{}@gmial.com", uuid::Uuid::new_v4().simple());
    let mut fields = vec![
        ("account", "100200300"),
        ("full_name", "Иванов Иван Иванович"),
        ("phone", "8 916 123 45 67"),
        ("email", typo.as_str()),
        ("consent", "on"),
        ("email_as_typed", "true"),
    ];
    let page = app.post_form("/register", &fields).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.text);
    let hidden = format!(r#"<input type="hidden" name="email_as_typed" value="{typo}">"#);
    assert!(page.text.contains(&hidden), "{}", page.text);
    assert!(!page.text.contains("Адрес верный") && !page.text.contains("email-error"), "{}", page.text);

    // The form sent again as the browser sends it: the hidden field with
    // the address. Another address typed meanwhile is checked anew.
    fields.pop();
    fields.extend([("email_as_typed", typo.as_str()), ("password", PASSWORD), ("password_confirm", PASSWORD)]);
    let other = typo.replacen('r', "s", 1);
    let mut changed = fields.clone();
    changed[3] = ("email", other.as_str());
    let asked = app.post_form("/register", &changed).await;
    assert_eq!(asked.status, StatusCode::BAD_REQUEST);
    assert!(asked.text.contains("Адрес верный") && !asked.text.contains(r#"type="hidden" name="email_as_typed""#));

    let created = app.post_form("/register", &fields).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(app.letters_to(&typo).await.len(), 1);
    assert!(app.letters_to(&other).await.is_empty());
}

#[tokio::test]
async fn register_returns_already_registered_then_email_has_cabinet() {
    let app = spawn_app().await;
    let email = unique_email();
    assert_eq!(app.register(&email).await.status, StatusCode::CREATED);

    let again = app.register(&unique_email()).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "already_registered");

    let mut other = registration(&email.to_uppercase());
    other["account"] = json!("100200301");
    other["full_name"] = json!("Салтыков-Щедрин Михаил Евграфович");
    let taken = app.post_json("/register", &other).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    // Issue 12: the address has a cabinet, where the account is added.
    assert_eq!(taken.code(), "email_has_cabinet");
}

#[tokio::test]
async fn concurrent_registrations_of_one_account_have_exactly_one_winner() {
    let app = spawn_app().await;
    // Ten at once: the account's daily budget of name checks (issue 10);
    // more at the same moment are paused like a guessing burst.
    let attempts = (0..10).map(|_| {
        let email = unique_email();
        let app = &app;
        async move { app.register(&email).await }
    });
    let answers = futures::future::join_all(attempts).await;
    let created = answers.iter().filter(|a| a.status == StatusCode::CREATED).count();
    let refused: BTreeSet<String> =
        answers.iter().filter(|a| a.status != StatusCode::CREATED).map(|a| a.code()).collect();
    assert_eq!(created, 1, "{:?}", answers.iter().map(|a| &a.text).collect::<Vec<_>>());
    assert_eq!(refused, BTreeSet::from(["already_registered".to_owned()]));
}

#[tokio::test]
async fn concurrent_registrations_with_one_email_have_exactly_one_winner() {
    let app = spawn_app().await;
    let email = unique_email();
    let accounts = [
        ("100200300", "Иванов Иван Иванович"),
        ("100200301", "Салтыков-Щедрин Михаил Евграфович"),
        ("100200302", "Фёдорова Алёна Петровна"),
        ("100200303", "Петров П. П."),
        ("1234567", "Смирнова Ольга Николаевна"),
    ];
    let attempts = accounts.iter().map(|(account, name)| {
        let mut body = registration(&email);
        body["account"] = json!(account);
        body["full_name"] = json!(name);
        let app = &app;
        async move { app.post_json("/register", &body).await }
    });
    let answers = futures::future::join_all(attempts).await;
    let created = answers.iter().filter(|a| a.status == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{:?}", answers.iter().map(|a| &a.text).collect::<Vec<_>>());
    assert!(answers.iter().filter(|a| a.status != StatusCode::CREATED).all(|a| a.code() == "email_has_cabinet"));
}

#[tokio::test]
async fn a_registration_is_kept_when_ses_refuses_the_letter() {
    let app = spawn_app_with(|o| o.mail_from = Some("unverified@nowhere.example".into())).await;
    let email = unique_email();
    let answer = app.register(&email).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    assert_eq!(answer.json()["letter_sent"], false);
    assert!(answer.json()["message"].as_str().unwrap_or_default().contains("Войдите с паролем"));
    assert!(app.letters_to(&email).await.is_empty());

    let again = app.register(&unique_email()).await;
    assert_eq!(again.code(), "already_registered", "the registration was stored");
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.code(), "email_not_confirmed");
}

#[tokio::test]
async fn login_answers_unknown_login_and_wrong_password_identically() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register_and_confirm(&email).await;
    app.login_when_ready(&email, PASSWORD).await;

    let unknown = app.login("nobody@example.ru", PASSWORD).await;
    let wrong = app.login(&email, "не тот пароль").await;
    let garbage = app.login("???", "x").await;
    for answer in [&unknown, &wrong, &garbage] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.code(), "invalid_credentials");
    }
    assert_eq!(unknown.text, wrong.text);
    assert_eq!(unknown.text, garbage.text);
}

#[tokio::test]
// Issue 14 reverses the earlier rule that a new letter kills the old link:
// residents open the first letter they see, often the older one.
async fn login_before_confirmation_sends_a_new_letter_and_every_link_sent_works() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let old_link = app.confirmation_path(&email).await;

    let answer = app.login(&email, PASSWORD).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.code(), "email_not_confirmed");
    let masked = answer.json()["email"].as_str().unwrap_or_default().to_owned();
    assert!(masked.contains("****@example.ru") && !masked.contains(&email), "{masked}");
    assert_eq!(app.letters_to(&email).await.len(), 2);

    let new_link = app.confirmation_path(&email).await;
    assert_ne!(new_link, old_link);
    let old = app.get(&old_link, "application/json", None).await;
    assert_eq!(old.status, StatusCode::OK, "the link in the first letter confirms: {}", old.text);
    assert_eq!(old.json()["already_confirmed"], false);
    let new = app.get(&new_link, "application/json", None).await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.text);
    assert_eq!(new.json()["already_confirmed"], true);
}

#[tokio::test]
async fn confirming_twice_answers_already_confirmed() {
    let app = spawn_app().await;
    let email = unique_email();
    let first = app.register_and_confirm(&email).await;
    assert_eq!(first.json()["already_confirmed"], false);
    let again = app.get(&app.confirmation_path(&email).await, "application/json", None).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["already_confirmed"], true);
    assert_eq!(again.json()["ready_at"], first.json()["ready_at"]);
    let page = app.get(&app.confirmation_path(&email).await, "text/html", None).await;
    assert!(page.text.contains("уже подтверждён"), "{}", page.text);
}

#[tokio::test]
async fn a_forged_or_truncated_link_is_refused_with_a_clear_message() {
    let app = spawn_app().await;
    for path in ["/confirm", "/confirm?token=abc", &format!("/confirm?token={}", "A".repeat(43))] {
        let answer = app.get(path, "application/json", None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(answer.code(), "invalid_token");
    }
    let page = app.get("/confirm?token=abc", "text/html", None).await;
    assert!(page.text.contains("Ссылка недействительна"));
}

/// The account number in a confirmation link only saves a read: the token
/// alone decides whose registration it confirms. A link without it (sent
/// before links had it, or cut short), with a mangled one, or with another
/// resident's works for its own resident and never for that other one.
#[tokio::test]
async fn a_confirmation_link_confirms_its_own_registration_whatever_account_it_carries() {
    let app = spawn_app().await;
    let (first, second, third) = (unique_email(), unique_email(), unique_email());
    let others = [("100200301", "Салтыков-Щедрин Михаил Евграфович"), ("100200302", "Фёдорова Алёна Петровна")];
    assert_eq!(app.register(&first).await.status, StatusCode::CREATED);
    for (email, (account, name)) in [(&second, others[0]), (&third, others[1])] {
        let mut body = registration(email);
        body["account"] = json!(account);
        body["full_name"] = json!(name);
        let answer = app.post_json("/register", &body).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    }
    let link = app.confirmation_path(&first).await;
    assert!(link.ends_with("&account=100200300"), "{link}");
    let token_only = |link: &str| link.split('&').next().unwrap_or_default().to_owned();

    // The first's link with the second's account: the first is confirmed,
    // the second is not.
    let swapped = format!("{}&account=100200301", token_only(&link));
    let confirmed = app.get(&swapped, "application/json", None).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    assert_eq!(confirmed.json()["already_confirmed"], false);
    assert_eq!(app.login(&first, PASSWORD).await.code(), "identification_pending");
    assert_eq!(app.login(&second, PASSWORD).await.code(), "email_not_confirmed");

    // Without the account: confirmed.
    let second_link = token_only(&app.confirmation_path(&second).await);
    let confirmed = app.get(&second_link, "application/json", None).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    assert_eq!(confirmed.json()["already_confirmed"], false);
    assert_eq!(app.login(&second, PASSWORD).await.code(), "identification_pending");

    // Accounts no program would write: the first open confirms, the others
    // find it confirmed; none fails.
    let third_link = token_only(&app.confirmation_path(&third).await);
    let long = "1".repeat(5000);
    let hostile = [
        "account=%D0%BD%D0%B5-%D1%81%D1%87%D1%91%D1%82",
        "account=",
        "account=0",
        "account=00100200302",
        "account=%EF%BC%91%EF%BC%90%EF%BC%90%EF%BC%92%EF%BC%90%EF%BC%90%EF%BC%93%EF%BC%90%EF%BC%92",
        "account=%00",
        "account=100,200302",
        "account=100200301&account=100200302",
        &format!("account={long}"),
    ];
    for (i, query) in hostile.iter().enumerate() {
        let path = format!("{third_link}&{query}");
        let answer = app.get(&path, "application/json", None).await;
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.text);
        assert_eq!(answer.json()["already_confirmed"], i > 0, "{query}");
    }
    assert_eq!(app.login(&third, PASSWORD).await.code(), "identification_pending");

    // A forged token gets the same answer whether the account it carries
    // is registered, not registered, or missing.
    let forged = format!("/confirm?token={}", "A".repeat(43));
    let answers = [
        app.get(&format!("{forged}&account=100200300"), "application/json", None).await,
        app.get(&format!("{forged}&account=100200399"), "application/json", None).await,
        app.get(&forged, "application/json", None).await,
    ];
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
        assert_eq!(answer.code(), "invalid_token");
        assert_eq!(answer.text, answers[2].text);
    }
}

#[tokio::test]
async fn an_expired_link_says_so_and_login_sends_a_fresh_one() {
    let app = spawn_app_with(|o| {
        o.environment.insert("CONFIRMATION_TOKEN_TTL_HOURS".into(), "0".into());
    })
    .await;
    let email = unique_email();
    app.register(&email).await;
    let expired = app.get(&app.confirmation_path(&email).await, "application/json", None).await;
    assert_eq!(expired.status, StatusCode::GONE, "{}", expired.text);
    assert_eq!(expired.code(), "expired_token");
    assert!(expired.json()["errors"][0]["message"].as_str().unwrap_or_default().contains("Войдите"));
    let page = app.get(&app.confirmation_path(&email).await, "text/html", None).await;
    assert_eq!(page.status, StatusCode::GONE);
    assert!(page.text.contains("Срок действия ссылки истёк") && page.text.contains("href=\"/login\""), "{}", page.text);
    assert_eq!(app.login(&email, PASSWORD).await.code(), "email_not_confirmed");
    assert_eq!(app.letters_to(&email).await.len(), 2, "a fresh letter was sent");
}

#[tokio::test]
async fn identification_rejects_a_resident_whose_payer_changed_meanwhile() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register_and_confirm(&email).await;
    let new_payer = BillingAccount {
        account: AccountNumber::parse("100200300").unwrap(),
        full_name: FullName::parse("Сидоров Семён Семёнович").unwrap(),
        address: None,
        balance: None,
        updated_at: cabinet::clock::now(),
    };
    app.stack.services.store.billing.put_many(std::slice::from_ref(&new_payer)).await.unwrap();

    let answer = app.login_when_ready(&email, PASSWORD).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text);
    assert_eq!(answer.code(), "identification_failed");
    assert!(!answer.text.contains("Сидоров"), "the new payer is not revealed");
    let letters = app.letters_to(&email).await;
    assert!(letters.last().is_some_and(|l| l.subject.contains("не удалось")), "{letters:?}");
}

#[tokio::test]
async fn a_duplicated_identification_job_identifies_once_and_sends_one_letter() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register_and_confirm(&email).await;
    let job = IdentificationJob {
        account: AccountNumber::parse("100200300").unwrap(),
        not_before: cabinet::clock::now(),
        base_url: app.stack.url.clone(),
    };
    for _ in 0..3 {
        app.stack.services.queue.schedule(&job, cabinet::clock::now()).await.unwrap();
    }
    assert_eq!(app.login_when_ready(&email, PASSWORD).await.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let ready = app.letters_to(&email).await.into_iter().filter(|l| l.subject.contains("открыт")).count();
    assert_eq!(ready, 1);
}

#[tokio::test]
async fn a_job_delivered_before_its_time_waits_until_then() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register_and_confirm(&email).await;
    // Sent without any SQS delay: the handler must put it back itself.
    let job = IdentificationJob {
        account: AccountNumber::parse("100200300").unwrap(),
        not_before: cabinet::clock::now() + time::Duration::hours(1),
        base_url: app.stack.url.clone(),
    };
    let sqs = aws_sdk_sqs::Client::new(&local_stack::local_aws(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await);
    sqs.send_message()
        .queue_url(&app.stack.services.config.identify_queue_url)
        .message_body(serde_json::to_string(&job).unwrap())
        .send()
        .await
        .unwrap();
    // The regular job (2 s) identifies; the early one is deferred, not run.
    assert_eq!(app.login_when_ready(&email, PASSWORD).await.status, StatusCode::OK);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&app.stack.services.config.identify_queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    let delayed = attributes
        .attributes
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed).cloned());
    assert_eq!(delayed.as_deref(), Some("1"), "the early job went back with a 15-minute delay");
}

#[tokio::test]
async fn the_account_needs_a_session_and_logout_ends_it() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register_and_confirm(&email).await;
    let cookie = app.login_when_ready(&email, PASSWORD).await.session_cookie().expect("a cookie");

    assert_eq!(app.get("/account", "application/json", None).await.code(), "not_authenticated");
    let page = app.get("/account", "text/html", None).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.headers.get("location").and_then(|v| v.to_str().ok()), Some("/login"));

    assert_eq!(app.get("/account", "application/json", Some(&cookie)).await.status, StatusCode::OK);
    let response = app
        .client
        .post(format!("{}/logout", app.stack.url))
        .header("cookie", &cookie)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.get("/account", "application/json", Some(&cookie)).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_html_form_comes_back_with_the_values_escaped_and_errors_by_their_fields() {
    let app = spawn_app().await;
    let answer = app
        .post_form(
            "/register",
            &[("account", "<script>alert(1)</script>"), ("full_name", "Иванов"), ("email", "a@b"), ("password", "x")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(!answer.text.contains("<script>alert(1)</script>"));
    assert!(answer.text.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{}", answer.text);
    assert!(answer.text.contains(r#"aria-describedby="account-error""#));
    assert!(answer.text.contains(r#"id="full_name" name="full_name" autocomplete="name" value="Иванов""#));
    assert!(answer.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(answer.headers["referrer-policy"], "same-origin");
}

#[tokio::test]
async fn the_whole_path_works_with_form_posts_and_html_pages() {
    let app = spawn_app().await;
    let form = app.get("/register", "text/html", None).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.text.contains("Номер лицевого счета") && form.text.contains("152-ФЗ"));

    let email = unique_email();
    let fields = [
        ("account", "100200300"),
        // The record has full names, so initials would not match (issue 10).
        ("full_name", "ИВАНОВ иван ИВАНОВИЧ"),
        ("phone", "8 916 123 45 67"),
        ("email", email.as_str()),
        ("password", PASSWORD),
        ("password_confirm", PASSWORD),
        ("consent", "on"),
    ];
    let check_mail = app.post_form("/register", &fields).await;
    assert_eq!(check_mail.status, StatusCode::CREATED, "{}", check_mail.text);
    assert!(check_mail.text.contains("Проверьте почту"));

    let confirmed = app.get(&app.confirmation_path(&email).await, "text/html", None).await;
    assert!(confirmed.text.contains("(МСК)"), "{}", confirmed.text);

    let mut logged_in = app.post_form("/login", &[("login", &email), ("password", PASSWORD)]).await;
    for _ in 0..60 {
        if logged_in.status == StatusCode::SEE_OTHER {
            break;
        }
        assert!(logged_in.text.contains("откроется") || logged_in.text.contains("завершается"), "{}", logged_in.text);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        logged_in = app.post_form("/login", &[("login", &email), ("password", PASSWORD)]).await;
    }
    assert_eq!(logged_in.headers.get("location").and_then(|v| v.to_str().ok()), Some("/account"));
    let cookie = logged_in.session_cookie().expect("a cookie");
    let account = app.get("/account", "text/html", Some(&cookie)).await;
    assert!(account.text.contains("Лицевой счёт 100200300"), "{}", account.text);
}

#[tokio::test]
async fn bad_bodies_get_clear_4xx_answers() {
    let app = spawn_app().await;
    let wrong_type = app.post_raw("/register", "text/plain", b"hello".to_vec()).await;
    assert_eq!(wrong_type.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let broken_json = app.post_raw("/register", "application/json", b"{\"account\":".to_vec()).await;
    assert_eq!(broken_json.status, StatusCode::BAD_REQUEST);
    let broken_utf8 = app.post_raw("/login", "application/json", vec![0x7b, 0xff, 0xfe, 0x7d]).await;
    assert_eq!(broken_utf8.status, StatusCode::BAD_REQUEST);
    let oversized = app.post_raw("/register", "application/json", vec![b' '; 64 * 1024]).await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    for answer in [&wrong_type, &broken_json, &broken_utf8, &oversized] {
        assert!(!answer.json()["errors"][0]["message"].as_str().unwrap_or_default().is_empty());
    }
    let missing = app.get("/nowhere", "application/json", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn resend_sends_a_new_letter_answers_alike_for_unknown_logins_and_is_rate_limited() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let old_link = app.confirmation_path(&email).await;

    let resent = app.post_json("/confirm/resend", &json!({"login": email})).await;
    let unknown = app.post_json("/confirm/resend", &json!({"login": "nobody@example.ru"})).await;
    assert_eq!(resent.status, StatusCode::ACCEPTED, "{}", resent.text);
    assert_eq!((resent.status, resent.text.clone()), (unknown.status, unknown.text.clone()), "no enumeration");
    assert_eq!(app.letters_to(&email).await.len(), 2);
    let message = resent.json()["message"].as_str().unwrap_or_default().to_owned();
    assert!(!message.contains("отправили") && message.contains("отправим"), "never says a letter went: {message}");

    // Three per account number, however it is typed.
    for login in ["100 200 300", "100-200-300", "00100200300"] {
        assert_eq!(app.post_json("/confirm/resend", &json!({"login": login})).await.status, StatusCode::ACCEPTED);
    }
    let limited = app.post_json("/confirm/resend", &json!({"login": "100200300"})).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{}", limited.text);
    assert_eq!(limited.code(), "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    // The wait is said in the unit it falls in: near the end of a window it is seconds.
    let said = format!("через {}.", cabinet::numerals::wait(retry_after));
    let message = limited.json()["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains(&said), "{message} should say {said}");

    // Issue 14: the link of the first letter still works after the resends.
    let old = app.get(&old_link, "application/json", None).await;
    assert_eq!(old.status, StatusCode::OK, "{}", old.text);
    assert_eq!(old.json()["already_confirmed"], false);
}

#[tokio::test]
async fn an_unconfirmed_address_can_be_corrected_and_the_old_link_says_the_address_changed() {
    let app = spawn_app().await;
    let wrong = unique_email();
    app.register(&wrong).await;
    let old_link = app.confirmation_path(&wrong).await;
    let right = unique_email();

    let bad_password = app.post_json("/email", &json!({"login": wrong, "password": "не тот", "email": right})).await;
    assert_eq!(bad_password.code(), "invalid_credentials");
    let changed = app.post_json("/email", &json!({"login": wrong, "password": PASSWORD, "email": right})).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.json()["status"], "awaiting_email_confirmation");

    let old = app.get(&old_link, "application/json", None).await;
    assert_eq!(old.status, StatusCode::GONE, "{}", old.text);
    assert_eq!(old.code(), "address_changed");
    let masked = changed.json()["email"].as_str().unwrap_or_default().to_owned();
    assert!(old.json()["errors"][0]["message"].as_str().unwrap_or_default().contains(&masked), "{}", old.text);
    let new_link = app.confirmation_path(&right).await;
    assert_eq!(app.get(&new_link, "application/json", None).await.status, StatusCode::OK);
    assert_eq!(app.login_when_ready(&right, PASSWORD).await.status, StatusCode::OK);
    assert_eq!(app.login(&wrong, PASSWORD).await.code(), "invalid_credentials", "the old address is released");

    let late = app.post_json("/email", &json!({"login": right, "password": PASSWORD, "email": unique_email()})).await;
    // Issue 10: answered like a wrong password, so /email is no password oracle.
    assert_eq!(late.status, StatusCode::UNAUTHORIZED, "a confirmed address is not changed here: {}", late.text);
    assert_eq!(late.code(), "invalid_credentials");
}

#[tokio::test]
async fn an_address_cannot_be_changed_to_one_already_taken() {
    let app = spawn_app().await;
    let first = unique_email();
    app.register(&first).await;
    let mut other = registration(&unique_email());
    other["account"] = json!("100200301");
    other["full_name"] = json!("Салтыков-Щедрин Михаил Евграфович");
    let second = other["email"].as_str().unwrap().to_owned();
    app.post_json("/register", &other).await;
    let taken = app.post_json("/email", &json!({"login": second, "password": PASSWORD, "email": first})).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.text);
    assert_eq!(taken.code(), "email_taken");
}

#[tokio::test]
async fn every_page_carries_the_security_headers_and_escapes_what_was_typed() {
    let app = spawn_app().await;
    let script = "<script>alert(1)</script>";
    let fields = ["account", "full_name", "phone", "email", "password", "password_confirm"];
    let typed: Vec<(&str, &str)> = fields.iter().map(|f| (*f, script)).collect();
    let mut pages = vec![
        app.post_form("/register", &typed).await,
        app.post_form("/login", &[("login", script), ("password", script)]).await,
        app.post_form("/confirm/resend", &[("login", script)]).await,
        app.post_form("/email", &[("login", script), ("password", script), ("email", script)]).await,
    ];
    for path in ["/register", "/login", "/help", "/privacy", "/nowhere", "/confirm?token=%3Cscript%3E"] {
        pages.push(app.get(path, "text/html", None).await);
    }
    for page in &pages {
        assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"), "{}", page.text);
        assert!(!page.text.contains(script), "raw script in: {}", page.text);
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("script-src 'self' 'unsafe-inline'"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(page.headers["referrer-policy"], "same-origin");
        assert_eq!(page.headers["x-content-type-options"], "nosniff");
        assert!(page.headers["strict-transport-security"].to_str().unwrap().contains("max-age="));
        assert!(page.text.contains("<title>") && page.text.contains("ПОТЕНЦИАЛ"));
    }
    assert!(pages[0].text.contains("&#60;script&#62;"), "typed text is shown back, escaped");
}

#[tokio::test]
async fn a_link_to_an_address_left_behind_stays_dead_when_the_address_comes_back() {
    let app = spawn_app().await;
    let first = unique_email();
    app.register(&first).await;
    let first_link = app.confirmation_path(&first).await;
    let second = unique_email();
    for (from, to) in [(&first, &second), (&second, &first)] {
        let changed = app.post_json("/email", &json!({"login": from, "password": PASSWORD, "email": to})).await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    }
    let old = app.get(&first_link, "application/json", None).await;
    assert_eq!(old.code(), "address_changed", "{}", old.text);
    let paths = app.confirmation_paths(&first).await;
    assert_eq!(paths.len(), 2);
    assert_eq!(app.get(&paths[1], "application/json", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_link_of_a_registration_that_expired_says_to_register_again() {
    let app = spawn_app_with(|o| {
        o.environment.insert("UNCONFIRMED_EXPIRY_SECONDS".into(), "2".into());
    })
    .await;
    let email = unique_email();
    assert_eq!(app.register(&email).await.status, StatusCode::CREATED);
    // The registration's lifetime began before the answer came.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let link = app.confirmation_path(&email).await;
    let gone = app.get(&link, "application/json", None).await;
    assert_eq!(gone.status, StatusCode::GONE, "{}", gone.text);
    assert_eq!(gone.code(), "registration_expired");
    let page = app.get(&link, "text/html", None).await;
    assert!(page.text.contains("href=\"/register\""), "the next step is to register again: {}", page.text);
}

#[tokio::test]
async fn while_ses_refuses_letters_the_link_already_sent_keeps_working_and_nothing_counts_against_the_mailbox() {
    let sender = OwnSender::new().await;
    let app = spawn_app_with(|o| o.mail_from = Some(sender.address())).await;
    let email = unique_email();
    assert_eq!(app.register(&email).await.json()["letter_sent"], true);
    let first_link = app.confirmation_path(&email).await;

    sender.accepts(false).await;
    let resent = app.post_json("/confirm/resend", &json!({"login": email})).await;
    assert_eq!(resent.status, StatusCode::ACCEPTED, "{}", resent.text);
    let message = resent.json()["message"].as_str().unwrap_or_default().to_owned();
    assert!(!message.contains("отправили") && !message.contains("больше не действует"), "{message}");
    // More failed letters than the mailbox takes in an hour (6).
    for _ in 0..7 {
        let login = app.login(&email, PASSWORD).await;
        assert_eq!(login.code(), "email_not_confirmed");
        let message = login.json()["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains("не удалось"), "says the letter did not go: {message}");
    }
    assert_eq!(app.letters_to(&email).await.len(), 1, "nothing went while SES refused");

    sender.accepts(true).await;
    let login = app.login(&email, PASSWORD).await;
    let message = login.json()["errors"][0]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("Мы отправили новое письмо"), "failed letters did not use up the mailbox: {message}");
    assert_eq!(app.letters_to(&email).await.len(), 2);

    let first = app.get(&first_link, "application/json", None).await;
    assert_eq!(first.status, StatusCode::OK, "the only letter's link kept working: {}", first.text);
    assert_eq!(first.json()["already_confirmed"], false);
}

#[tokio::test]
async fn an_address_change_to_a_domain_that_cannot_exist_is_refused_before_any_letter() {
    let app = spawn_app().await;
    let wrong = unique_email();
    app.register(&wrong).await;
    let typo = format!("{}@mail.ry", wrong.split('@').next().unwrap());
    let refused = app.post_json("/email", &json!({"login": wrong, "password": PASSWORD, "email": typo})).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(refused.json()["errors"][0]["field"], "email");
    assert_eq!(refused.json()["errors"][0]["suggestion"], typo.replace("mail.ry", "mail.ru"));
    assert!(app.letters_to(&typo).await.is_empty());

    // So is a change asked for from the account page.
    let app = spawn_app().await;
    let email = unique_email();
    let cookie = app.active_resident(&email).await;
    let answer = app
        .client
        .post(format!("{}/account/email", app.stack.url))
        .header("cookie", &cookie)
        .json(&json!({"password": PASSWORD, "email": "ivanov@yandex.ry"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["errors"][0]["suggestion"], "ivanov@yandex.ru", "{body}");
    assert!(app.letters_to("ivanov@yandex.ry").await.is_empty());
}

/// Issue 16: a job that never comes (its retries spent, in the dead-letter
/// queue) leaves nobody "pending" forever: past the ready time, login and
/// the status page identify the resident themselves.
#[tokio::test]
async fn a_resident_whose_identification_job_was_lost_gets_in_once_it_is_overdue() {
    let app = spawn_app_with(|o| {
        o.environment.insert("IDENTIFY_OVERDUE_SECONDS".into(), "1".into());
    })
    .await;
    let email = unique_email();
    let registered = app.register(&email).await;
    let status_cookie = registered.headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let path = app.confirmation_path(&email).await;
    let sqs = aws_sdk_sqs::Client::new(&local_stack::local_aws(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await);
    let confirmed = app.get(&path, "application/json", None).await;
    // The job is lost before its delay ends.
    sqs.purge_queue().queue_url(&app.stack.services.config.identify_queue_url).send().await.unwrap();
    let ready_at = time::OffsetDateTime::parse(
        confirmed.json()["ready_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let overdue = ready_at + time::Duration::seconds(2) - cabinet::clock::now();
    tokio::time::sleep(overdue.try_into().unwrap_or_default()).await;
    // No job did it meanwhile.
    let before = app.get("/register/status", "application/json", Some(&status_cookie)).await;
    assert_eq!(before.json()["status"], "active", "the status page identified the resident: {}", before.text);
    assert!(before.json().get("delayed").is_none(), "{}", before.text);
    assert_eq!(app.login(&email, PASSWORD).await.status, StatusCode::OK);
    let letters = app.letters_to(&email).await;
    assert_eq!(letters.len(), 2, "the confirmation letter and the 'cabinet is open' letter, once");
}

/// Issue 16: the "cabinet is open" letter is claimed before it is sent. A
/// claim left by a sender that died (or could not give it back) goes stale
/// and is taken again, so the letter is not lost; a fresh one is honoured.
#[tokio::test]
async fn a_stale_claim_on_the_identified_letter_is_taken_again_and_a_fresh_one_is_honoured() {
    let app = spawn_app_with(|o| {
        o.environment.insert("IDENTIFY_OVERDUE_SECONDS".into(), "1".into());
    })
    .await;
    let aws = local_stack::local_aws(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let config = &app.stack.services.config;
    let now = cabinet::clock::now().unix_timestamp();
    let cases = [
        ("100200300", "Иванов Иван Иванович", now - 3600, 2),
        ("100200301", "Салтыков-Щедрин Михаил Евграфович", now, 1),
    ];
    let mut emails = Vec::new();
    for (account, name, _, _) in cases {
        let email = unique_email();
        let mut body = registration(&email);
        body["account"] = json!(account);
        body["full_name"] = json!(name);
        assert_eq!(app.post_json("/register", &body).await.status, StatusCode::CREATED);
        emails.push(email);
    }
    // Both jobs are lost before their delay ends (one purge a minute).
    for email in &emails {
        let confirmed = app.get(&app.confirmation_path(email).await, "application/json", None).await;
        assert_eq!(confirmed.status, StatusCode::OK);
    }
    sqs.purge_queue().queue_url(&config.identify_queue_url).send().await.unwrap();
    for (account, _, claimed_at, _) in cases {
        dynamodb
            .update_item()
            .table_name(&config.residents_table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("RESIDENT#{account}")))
            .update_expression("SET outcome_letter_claimed_at = :at")
            .expression_attribute_values(":at", aws_sdk_dynamodb::types::AttributeValue::N(claimed_at.to_string()))
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    for ((account, _, _, letters), email) in cases.iter().zip(&emails) {
        assert_eq!(app.login(email, PASSWORD).await.status, StatusCode::OK, "{account}");
        assert_eq!(app.letters_to(email).await.len(), *letters, "{account}");
    }
}

/// Found by attacking issue 14's links: a registration stored before
/// address nonces existed (none on the resident, none on its links) could
/// never be confirmed, and the page said "already confirmed".
#[tokio::test]
async fn a_registration_stored_before_address_nonces_is_confirmed_by_its_link() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let path = app.confirmation_path(&email).await;
    let dynamodb =
        aws_sdk_dynamodb::Client::new(&local_stack::local_aws(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await);
    let table = &app.stack.services.config.residents_table;
    let token = path.split_once("token=").unwrap().1.split('&').next().unwrap();
    let hash = cabinet::domain::SecretToken::from_presented(token).unwrap().hash();
    for key in ["RESIDENT#100200300".to_owned(), format!("CONFIRM#{}", hash.as_str())] {
        dynamodb
            .update_item()
            .table_name(table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(key))
            .update_expression("REMOVE address_nonce")
            .send()
            .await
            .unwrap();
    }
    let confirmed = app.get(&path, "application/json", None).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text);
    assert_eq!(confirmed.json()["already_confirmed"], false, "{}", confirmed.text);
    assert_eq!(confirmed.json()["status"], "awaiting_identification");
}

/// Found by attacking issue 14's links: a double submit of one address
/// change told the losers their own new address belonged to another cabinet.
#[tokio::test]
async fn a_double_submitted_address_change_never_says_the_address_is_someone_elses() {
    let app = spawn_app().await;
    let wrong = unique_email();
    app.register(&wrong).await;
    let right = unique_email();
    let body = json!({"login": "100200300", "password": PASSWORD, "email": right});
    let answers = futures::future::join_all((0..3).map(|_| app.post_json("/email", &body))).await;
    let texts: Vec<_> = answers.iter().map(|a| a.text.clone()).collect();
    assert_eq!(answers.iter().filter(|a| a.status == StatusCode::OK).count(), 1, "{texts:?}");
    assert!(answers.iter().all(|a| a.status == StatusCode::OK || a.code() != "email_taken"), "{texts:?}");
    assert_eq!(app.get(&app.confirmation_path(&right).await, "application/json", None).await.status, StatusCode::OK);

    // The same link of a confirmed address change, opened at once in four tabs.
    let app = spawn_app().await;
    let old = unique_email();
    let cookie = app.active_resident(&old).await;
    let new = unique_email();
    let asked = app
        .client
        .post(format!("{}/account/email", app.stack.url))
        .header("cookie", &cookie)
        .json(&json!({"password": PASSWORD, "email": new}))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let link = app.link_in_letter(&new, "/account/email/confirm?token=").await;
    let opened = futures::future::join_all((0..4).map(|_| app.get(&link, "application/json", None))).await;
    let texts: Vec<_> = opened.iter().map(|a| a.text.clone()).collect();
    assert_eq!(opened.iter().filter(|a| a.status == StatusCode::OK).count(), 1, "{texts:?}");
    assert!(opened.iter().all(|a| a.status == StatusCode::OK || a.code() != "email_taken"), "{texts:?}");
}

/// Found by attacking issue 14's links: "correcting" to the same address
/// said it had changed and that earlier links were dead.
#[tokio::test]
async fn correcting_to_the_same_address_says_only_that_the_letter_went_again() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let first = app.confirmation_path(&email).await;
    let answer =
        app.post_json("/email", &json!({"login": email, "password": PASSWORD, "email": email.to_uppercase()})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let message = answer.json()["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("тот же адрес") && !message.contains("изменён"), "{message}");
    assert_eq!(app.get(&first, "application/json", None).await.json()["already_confirmed"], false);
}

/// Found by attacking issue 14's links: letters after an address change
/// were not counted, so going back and forth flooded a mailbox past its
/// hourly limit.
#[tokio::test]
async fn address_changes_back_and_forth_stop_at_the_mailbox_limit() {
    let app = spawn_app().await;
    let a = unique_email();
    let b = unique_email();
    app.register(&a).await;
    // Six letters to A this hour (each login before confirming sends one).
    for _ in 0..6 {
        assert_eq!(app.login(&a, PASSWORD).await.code(), "email_not_confirmed");
    }
    let letters_to_a = app.letters_to(&a).await.len();
    let to_b = app.post_json("/email", &json!({"login": a, "password": PASSWORD, "email": b})).await;
    assert_eq!(to_b.status, StatusCode::OK, "{}", to_b.text);
    let back = app.post_json("/email", &json!({"login": b, "password": PASSWORD, "email": a})).await;
    assert_eq!(back.status, StatusCode::TOO_MANY_REQUESTS, "{}", back.text);
    assert_eq!(app.letters_to(&a).await.len(), letters_to_a, "no seventh letter to A this hour");
    let b_link = app.confirmation_path(&b).await;
    assert_eq!(app.get(&b_link, "application/json", None).await.status, StatusCode::OK, "the registration stayed at B");
}

/// Found by attacking issue 14's links: a reset letter that SES refused
/// killed the link of the reset letter that had gone before.
#[tokio::test]
async fn a_refused_reset_letter_leaves_the_earlier_reset_link_working() {
    let sender = OwnSender::new().await;
    let app = spawn_app_with(|o| o.mail_from = Some(sender.address())).await;
    let email = unique_email();
    app.active_resident(&email).await;
    assert_eq!(app.post_json("/password/forgot", &json!({"login": email})).await.status, StatusCode::ACCEPTED);
    let token = app.reset_token(&email).await;
    sender.accepts(false).await;
    assert_eq!(app.post_json("/password/forgot", &json!({"login": email})).await.status, StatusCode::ACCEPTED);
    sender.accepts(true).await;
    let page = app.get(&format!("/password/reset?token={token}"), "application/json", None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
}

/// Issue 11: instants are stored as RFC 3339 strings now. Items written
/// before kept numbers (milliseconds for the lock and the session, seconds
/// for the letter's claim, which the test above writes so); they still
/// count as what they say: a session's times, a lock that holds or ended,
/// and a longer lock that a shorter one does not replace.
#[tokio::test]
async fn locks_and_sessions_stored_as_numbers_before_instants_were_strings_still_hold() {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    use cabinet::limits::Subject;
    let app = spawn_app().await;
    let dynamodb =
        aws_sdk_dynamodb::Client::new(&local_stack::local_aws(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await);
    let table = &app.stack.services.config.residents_table;
    let now_ms = || i64::try_from(cabinet::clock::now().unix_timestamp_nanos() / 1_000_000).unwrap();
    let email = unique_email();
    let cookie = app.active_resident(&email).await;

    // A session whose times are numbers of milliseconds: live while they
    // say so, ended when they say it is too old.
    let token = cookie.split_once('=').unwrap().1;
    let session = format!("SESSION#{}", cabinet::domain::SecretToken::from_presented(token).unwrap().hash().as_str());
    let set_session = |created_ms: i64| {
        dynamodb
            .update_item()
            .table_name(table)
            .key("pk", S(session.clone()))
            .update_expression("SET created_at_ms = :created, last_seen_ms = :seen")
            .expression_attribute_values(":created", N(created_ms.to_string()))
            .expression_attribute_values(":seen", N(now_ms().to_string()))
            .send()
    };
    set_session(now_ms()).await.unwrap();
    assert_eq!(app.get("/account", "application/json", Some(&cookie)).await.status, StatusCode::OK);
    let items = app.stack.table_items("ResidentsTable").await.unwrap();
    let stored = items.iter().find(|i| i["pk"] == session.as_str()).unwrap();
    assert!(stored["last_seen_ms"].as_str().unwrap().ends_with('Z'), "touched in the new form: {stored}");
    set_session(now_ms() - 400 * 86_400_000).await.unwrap();
    assert_eq!(app.get("/account", "application/json", Some(&cookie)).await.status, StatusCode::UNAUTHORIZED);

    // Login locks whose end is a number of milliseconds.
    let subjects = [Subject::login(&email).to_string(), "resident:100200300".to_owned()];
    let set_lock = |subject: &str, until_ms: i64| {
        dynamodb
            .put_item()
            .table_name(table)
            .item("pk", S(format!("LOCK#{subject}")))
            .item("failures", N("5".into()))
            .item("locked_until_ms", N(until_ms.to_string()))
            .item("expires_at", N((now_ms() / 1000 + 3600).to_string()))
            .send()
    };
    for subject in &subjects {
        set_lock(subject, now_ms() + 60_000).await.unwrap();
    }
    let locked = app.login(&email, PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{}", locked.text);
    for subject in &subjects {
        set_lock(subject, now_ms() - 1_000).await.unwrap();
    }
    let ended = app.login(&email, PASSWORD).await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.text);

    // The registration pause (`Counters::lock`): a longer old lock is not
    // shortened, and a longer new one replaces it.
    let counters = &app.stack.services.store.counters;
    let pause = Subject::Registration(cabinet::domain::AccountNumber::parse("100200300").unwrap());
    let old_until = now_ms() + 600_000;
    set_lock(&pause.to_string(), old_until).await.unwrap();
    counters.lock(&pause, now_ms() + 1_000).await.unwrap();
    assert_eq!(counters.lock_record(&pause).await.unwrap().unwrap().locked_until_ms, old_until);
    let longer = now_ms() + 1_200_000;
    counters.lock(&pause, longer).await.unwrap();
    assert_eq!(counters.lock_record(&pause).await.unwrap().unwrap().locked_until_ms, longer);
    // An old lock that ended gives way to a new one.
    set_lock(&pause.to_string(), now_ms() - 1_000).await.unwrap();
    let new_until = now_ms() + 1_000;
    counters.lock(&pause, new_until).await.unwrap();
    assert_eq!(counters.lock_record(&pause).await.unwrap().unwrap().locked_until_ms, new_until);
}
