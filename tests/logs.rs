#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The logs of a whole flow, captured as the functions write them (JSON
//! lines), hold no password, token, name, phone or e-mail address in clear.
//! One test in its own binary: it owns the process-wide log subscriber.

use std::time::Duration;

use e2e::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_full_flow_logs_no_personal_data_or_secrets() {
    let captured = captured_logs();

    let app = spawn_app().await;
    let email = unique_email();
    // A refused registration with the resident's data in it, then the real one.
    let mut wrong = registration(&email);
    wrong["full_name"] = json!("Иванова Мария Петровна");
    assert_eq!(app.post_json("/register", &wrong).await.status, StatusCode::UNPROCESSABLE_ENTITY);
    let cookie = app.active_resident(&email).await;
    let confirmation = app.confirmation_path(&email).await;
    assert_eq!(app.get("/account", "text/html", Some(&cookie)).await.status, StatusCode::OK);
    assert_eq!(app.login(&email, "неверный пароль").await.status, StatusCode::UNAUTHORIZED);
    app.post_json("/password/forgot", &json!({"login": email})).await;
    let token = app.reset_token(&email).await;
    let new_password = "зелёный троллейбус";
    let reset = json!({"token": token, "password": new_password, "password_confirm": new_password});
    assert_eq!(app.post_json("/password/reset", &reset).await.status, StatusCode::OK);
    let session = app.login(&email, new_password).await.session_cookie().unwrap();
    app.client
        .post(format!("{}/logout", app.stack.url))
        .header("cookie", &session)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let bounce = json!({"eventType": "Bounce", "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": email}]}});
    app.stack.send_to_queue("MailEventsQueue", &bounce.to_string()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let logs = captured.text();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    for expected in [
        "resident registered",
        "e-mail confirmed",
        "resident identified",
        "logged in",
        "login refused",
        "password reset",
        "mail event handled",
    ] {
        assert!(
            lines.iter().any(|l| l["fields"]["message"].as_str().is_some_and(|m| m.contains(expected))),
            "{expected:?} logged"
        );
    }
    // The funnel (issue 15): these lines are CloudWatch metrics in Embedded
    // Metric Format, `_aws` at the top level of the line, each metric's value
    // and the `Outcome` dimension beside it.
    let emf: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("_aws").is_some()).collect();
    for line in &emf {
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert!(line["_aws"]["Timestamp"].as_u64().is_some(), "{line}");
        assert!(directive["Namespace"].as_str().is_some_and(|n| !n.is_empty()), "{line}");
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(line[metric["Name"].as_str().unwrap()].as_f64().is_some(), "{line}");
        }
        for dimension in directive["Dimensions"][0].as_array().unwrap() {
            assert!(line[dimension.as_str().unwrap()].as_str().is_some(), "{line}");
        }
    }
    for (metric, outcome) in [
        ("Registrations", "name_mismatch"),
        ("Registrations", "registered"),
        ("Confirmations", "confirmed"),
        ("Identifications", "active"),
        ("Logins", "logged_in"),
        ("Logins", "invalid_credentials"),
    ] {
        assert!(
            emf.iter().any(|l| l[metric].as_f64() == Some(1.0) && l["Outcome"] == outcome),
            "{metric} {outcome} emitted"
        );
    }
    let local_part = email.split('@').next().unwrap();
    let confirmation_token = confirmation.split_once("token=").unwrap().1;
    let session_token = cookie.split_once('=').unwrap().1;
    let secrets = [
        PASSWORD,
        new_password,
        "неверный пароль",
        local_part,
        "Иванов",
        "Иванова",
        "Мария",
        "+79161234567",
        "9161234567",
        "123-45-67",
        confirmation_token,
        &token,
        session_token,
        "$argon2",
    ];
    for secret in secrets {
        assert!(!logs.contains(secret), "{secret:?} appears in the logs");
    }
    println!("{} log lines checked, {} of them metrics", lines.len(), emf.len());
}
