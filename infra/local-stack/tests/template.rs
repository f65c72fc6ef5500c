#![allow(clippy::expect_used, clippy::panic)]

//! template.yaml and the code agree: every function the template routes to
//! has a local handler and vice versa, and the environment it gives is the
//! one `Config` reads.

use std::collections::BTreeSet;

use local_stack::functions::Source;
use local_stack::template::DEFAULT_ROUTE;
use local_stack::{CONSUMERS, HTTP_FUNCTIONS, Template, repo_root};

fn template() -> Template {
    Template::load(&repo_root().join("template.yaml")).expect("template.yaml parses")
}

/// Every route and event source of template.yaml has exactly one handler
/// in the code (`functions::HTTP_FUNCTIONS`' routes, `CONSUMERS`), and
/// every handler exactly one route or source in the template.
#[test]
fn every_route_and_event_source_has_exactly_one_handler_and_back() {
    let template = template();
    let mut in_template: Vec<String> =
        template.routes.iter().map(|r| format!("{} {} -> {}", r.method, r.path, r.binary)).collect();
    let mut in_code = Vec::new();
    for function in HTTP_FUNCTIONS {
        let (table, default) = (function.table)();
        for route in table {
            in_code.push(format!("{} {} -> {}", route.method, route.path, function.binary));
        }
        if default {
            in_code.push(format!("ANY {DEFAULT_ROUTE} -> {}", function.binary));
        }
    }
    in_template.sort();
    in_code.sort();
    assert_eq!(in_code, in_template, "routes in the code, then in template.yaml");
    // One handler a route: no method and path served by two functions.
    let keys: BTreeSet<&str> = in_code.iter().filter_map(|r| r.split(" -> ").next()).collect();
    assert_eq!(keys.len(), in_code.len(), "a route served twice: {in_code:?}");

    let mut sources: Vec<String> = template
        .subscriptions
        .iter()
        .map(|s| format!("queue -> {}", s.binary))
        .chain(template.s3_triggers.iter().map(|t| format!("bucket -> {}", t.binary)))
        .collect();
    let mut consumers: Vec<String> = CONSUMERS
        .iter()
        .map(|c| match c.source {
            Source::Queue(_) => format!("queue -> {}", c.binary),
            Source::Bucket(_) => format!("bucket -> {}", c.binary),
        })
        .collect();
    sources.sort();
    consumers.sort();
    assert_eq!(consumers, sources, "consumers in the code, then event sources in template.yaml");
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

/// Read by the log format at start-up (`web::init_tracing`), not by `Config`.
const LOG_VARIABLES: [&str; 2] = ["RUST_LOG", cabinet::metrics::NAMESPACE_VARIABLE];

#[test]
fn the_template_sets_exactly_the_variables_config_reads() {
    let template = template();
    let set: BTreeSet<&str> =
        template.environment.iter().map(|(name, _)| name.as_str()).filter(|n| !LOG_VARIABLES.contains(n)).collect();
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

// --- Issue 10, item 6: data safety and least privilege in the template. ---

use local_stack::template::reference;
use serde_yaml::Value;

fn raw() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml parses")
}

fn resource<'a>(raw: &'a Value, id: &str) -> &'a Value {
    raw.get("Resources").and_then(|r| r.get(id)).unwrap_or_else(|| panic!("{id} in the template"))
}

/// A resource entry as text: a plain string, the text of a `!Sub`, or the
/// logical id of a `!Ref`/`!GetAtt`.
fn resource_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Tagged(tagged) if tagged.tag == "!Sub" => tagged.value.as_str().unwrap_or_default().to_owned(),
        other => reference(other).unwrap_or_default(),
    }
}

/// Every statement of every function: (function, actions, resources).
fn statements(raw: &Value) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut found = Vec::new();
    for (id, resource) in raw.get("Resources").and_then(Value::as_mapping).expect("resources") {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let policies = resource.get("Properties").and_then(|p| p.get("Policies")).and_then(Value::as_sequence);
        for policy in policies.into_iter().flatten() {
            for statement in policy.get("Statement").and_then(Value::as_sequence).into_iter().flatten() {
                let list = |key: &str| -> Vec<String> {
                    match statement.get(key) {
                        Some(Value::Sequence(items)) => items.iter().map(resource_text).collect(),
                        Some(one) => vec![resource_text(one)],
                        None => Vec::new(),
                    }
                };
                found.push((id.as_str().unwrap_or_default().to_owned(), list("Action"), list("Resource")));
            }
        }
    }
    found
}

#[test]
fn tables_and_the_bucket_survive_a_deleted_or_replaced_stack() {
    let raw = raw();
    for id in ["ResidentsTable", "BillingAccountsTable", "AuditTable", "BillingBucket"] {
        let resource = resource(&raw, id);
        assert_eq!(resource.get("DeletionPolicy").and_then(Value::as_str), Some("Retain"), "{id}");
        assert_eq!(resource.get("UpdateReplacePolicy").and_then(Value::as_str), Some("Retain"), "{id}");
        if id.ends_with("Table") {
            let protected = resource.get("Properties").and_then(|p| p.get("DeletionProtectionEnabled"));
            assert_eq!(protected.and_then(Value::as_bool), Some(true), "{id}");
        }
    }
}

#[test]
fn function_policies_grant_only_what_the_functions_need() {
    let statements = statements(&raw());
    assert!(!statements.is_empty());
    for (function, actions, resources) in &statements {
        assert!(actions.iter().all(|a| !a.contains('*')), "{function}: no wildcard actions: {actions:?}");
        if actions.iter().any(|a| a.starts_with("ses:")) {
            assert!(resources.iter().all(|r| !r.contains("identity/*")), "{function}: {resources:?}");
            assert!(resources.iter().any(|r| r.ends_with(":identity/${MailFrom}")), "{function}: {resources:?}");
            assert!(resources.iter().any(|r| r.contains(":configuration-set/${MailConfigurationSet}")), "{function}");
        }
        // Audit records are evidence: functions only add them.
        if resources.iter().any(|r| r == "AuditTable") {
            assert_eq!(actions, &["dynamodb:PutItem"], "{function}");
            assert_eq!(resources, &["AuditTable"], "{function}: the audit table in a statement of its own");
        }
        // identify reads the billing data and never writes it.
        if function == "IdentifyFunction" && resources.iter().any(|r| r == "BillingAccountsTable") {
            assert_eq!(actions, &["dynamodb:GetItem"], "{function}");
        }
    }
}

#[test]
fn the_bucket_refuses_plain_http() {
    let raw = raw();
    let policy = resource(&raw, "BillingBucketPolicy");
    assert_eq!(policy.get("Type").and_then(Value::as_str), Some("AWS::S3::BucketPolicy"));
    let properties = policy.get("Properties").expect("properties");
    assert_eq!(properties.get("Bucket").and_then(reference).as_deref(), Some("BillingBucket"));
    let statements = properties.get("PolicyDocument").and_then(|d| d.get("Statement")).and_then(Value::as_sequence);
    let deny = statements.into_iter().flatten().find(|s| s.get("Effect").and_then(Value::as_str) == Some("Deny"));
    let deny = deny.expect("a Deny statement");
    let secure = deny.get("Condition").and_then(|c| c.get("Bool")).and_then(|b| b.get("aws:SecureTransport"));
    assert_eq!(secure.and_then(Value::as_str), Some("false"));
    assert_eq!(deny.get("Action").and_then(Value::as_str), Some("s3:*"));
}

#[test]
fn the_api_is_throttled_and_logs_access_without_bodies_or_query_strings() {
    let raw = raw();
    let properties = resource(&raw, "HttpApi").get("Properties").expect("HttpApi properties");
    let throttling = properties.get("DefaultRouteSettings").expect("DefaultRouteSettings");
    for key in ["ThrottlingBurstLimit", "ThrottlingRateLimit"] {
        assert!(throttling.get(key).and_then(Value::as_u64).is_some_and(|n| n > 0), "{key}");
    }
    let logs = properties.get("AccessLogSettings").expect("AccessLogSettings");
    assert_eq!(logs.get("DestinationArn").and_then(reference).as_deref(), Some("ApiAccessLogs"));
    let format = logs.get("Format").and_then(Value::as_str).expect("a format");
    let fields: serde_json::Value = serde_json::from_str(format).expect("the access log format is JSON");
    let text = fields.to_string();
    for leaked in ["$context.path", "querystring", "requestBody", "$input", "authorization"] {
        assert!(!text.to_lowercase().contains(&leaked.to_lowercase()), "{leaked} in the access log");
    }
    assert!(text.contains("$context.routeKey") && text.contains("$context.status"));
}
