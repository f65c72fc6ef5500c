#![allow(clippy::expect_used)]

//! template.yaml and the code agree: every function the template routes to
//! has a local handler and vice versa, and the environment it gives is the
//! one `Config` reads.

use std::collections::BTreeSet;

use local_stack::{HTTP_FUNCTIONS, S3_FUNCTIONS, SQS_FUNCTIONS, Template, repo_root};

fn template() -> Template {
    Template::load(&repo_root().join("template.yaml")).expect("template.yaml parses")
}

#[test]
fn every_routed_function_has_a_local_handler_and_back() {
    let template = template();
    let routed: BTreeSet<&str> = template.routes.iter().map(|r| r.binary.as_str()).collect();
    assert_eq!(routed, HTTP_FUNCTIONS.iter().copied().collect());
    let subscribed: BTreeSet<&str> = template.subscriptions.iter().map(|s| s.binary.as_str()).collect();
    assert_eq!(subscribed, SQS_FUNCTIONS.iter().copied().collect());
    let triggered: BTreeSet<&str> = template.s3_triggers.iter().map(|t| t.binary.as_str()).collect();
    assert_eq!(triggered, S3_FUNCTIONS.iter().copied().collect());
}

#[test]
fn billing_uploads_under_incoming_trigger_the_import() {
    let template = template();
    let trigger = template.s3_triggers.iter().find(|t| t.binary == "import-accounts").expect("an S3 trigger");
    assert_eq!(trigger.bucket, "BillingBucket");
    assert_eq!(trigger.prefix.as_deref(), Some(cabinet::usecases::import::INCOMING_PREFIX));
    assert_eq!(trigger.events, ["s3:ObjectCreated:*"]);
}

#[test]
fn the_routes_are_the_documented_ones() {
    let routes: Vec<String> = template().routes.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    for expected in [
        "GET /register",
        "POST /register",
        "GET /confirm",
        "GET /login",
        "POST /login",
        "POST /logout",
        "GET /account",
        "POST /confirm/resend",
        "POST /email",
        "GET /help",
        "GET /privacy",
    ] {
        assert!(routes.contains(&expected.to_owned()), "{expected} missing from {routes:?}");
    }
}

#[test]
fn the_template_sets_exactly_the_variables_config_reads() {
    let template = template();
    let set: BTreeSet<&str> =
        template.environment.iter().map(|(name, _)| name.as_str()).filter(|n| *n != "RUST_LOG").collect();
    assert_eq!(set, cabinet::Config::VARIABLES.iter().copied().collect());
}

#[test]
fn every_function_of_the_workspace_is_in_the_template() {
    let template = template();
    let in_template: BTreeSet<String> = template
        .routes
        .iter()
        .map(|r| r.binary.clone())
        .chain(template.subscriptions.iter().map(|s| s.binary.clone()))
        .chain(template.s3_triggers.iter().map(|t| t.binary.clone()))
        .collect();
    let crates: BTreeSet<String> = std::fs::read_dir(repo_root().join("functions"))
        .expect("functions/")
        .filter_map(|entry| entry.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(in_template, crates);
}
