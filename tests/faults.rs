#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Faults in the AWS calls the functions make (issue 16): the answer a
//! resident gets, what is left behind, and that nothing is used up.

use e2e::*;
use reqwest::StatusCode;
use serde_json::json;

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
