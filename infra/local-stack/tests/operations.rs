#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::string_slice)]

//! Issue 15: what ops need before putting template.yaml live. Data kept
//! with the stack, logs that expire, alarms that reach someone, the funnel
//! on a dashboard, the API limited at the edge, deploying as documented.

use std::collections::BTreeSet;

use local_stack::repo_root;
use local_stack::template::reference;
use serde_yaml::Value;

fn raw() -> Value {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).expect("template.yaml");
    serde_yaml::from_str(&text).expect("template.yaml parses")
}

fn resources(raw: &Value) -> Vec<(String, &Value)> {
    let resources = raw.get("Resources").and_then(Value::as_mapping).expect("Resources");
    resources.iter().map(|(id, r)| (id.as_str().expect("an id").to_owned(), r)).collect()
}

fn of_type<'a>(raw: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    resources(raw).into_iter().filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind)).collect()
}

fn property<'a>(resource: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(resource.get("Properties")?, |value, key| value.get(*key))
}

/// The text of a `!Sub` (or a plain string).
fn sub_text(value: &Value) -> String {
    match value {
        Value::Tagged(tagged) if tagged.tag == "!Sub" => tagged.value.as_str().unwrap_or_default().to_owned(),
        Value::String(s) => s.clone(),
        other => panic!("not a !Sub: {other:?}"),
    }
}

fn is_ref_to(value: Option<&Value>, id: &str) -> bool {
    value.and_then(reference).as_deref() == Some(id)
}

fn number(value: Option<&Value>) -> f64 {
    value.and_then(Value::as_f64).unwrap_or_else(|| panic!("a number: {value:?}"))
}

fn functions(raw: &Value) -> Vec<(String, &Value)> {
    of_type(raw, "AWS::Serverless::Function")
}

fn alarms(raw: &Value) -> Vec<(String, &Value)> {
    of_type(raw, "AWS::CloudWatch::Alarm")
}

/// The alarm on `metric` of `namespace` whose dimension `dimension` is `!Ref`/`!GetAtt` of `id`.
fn alarm_on<'a>(
    raw: &'a Value,
    namespace: &str,
    metric: &str,
    dimension: Option<&str>,
    id: &str,
) -> (String, &'a Value) {
    alarms(raw)
        .into_iter()
        .find(|(_, alarm)| {
            property(alarm, &["Namespace"]).and_then(Value::as_str) == Some(namespace)
                && property(alarm, &["MetricName"]).and_then(Value::as_str) == Some(metric)
                && dimension.is_none_or(|name| {
                    property(alarm, &["Dimensions"])
                        .and_then(Value::as_sequence)
                        .into_iter()
                        .flatten()
                        .any(|d| d.get("Name").and_then(Value::as_str) == Some(name) && is_ref_to(d.get("Value"), id))
                })
        })
        .unwrap_or_else(|| panic!("an alarm on {namespace} {metric} of {id}"))
}

fn parameter_default(raw: &Value, name: &str) -> Option<String> {
    let default = raw.get("Parameters")?.get(name)?.get("Default")?;
    default.as_str().map(str::to_owned).or_else(|| default.as_u64().map(|n| n.to_string()))
}

#[test]
fn every_function_logs_json_into_its_own_log_group_that_expires() {
    let raw = raw();
    let globals = raw.get("Globals").and_then(|g| g.get("Function")).expect("Globals.Function");
    let format = globals.get("LoggingConfig").and_then(|l| l.get("LogFormat")).and_then(Value::as_str);
    assert_eq!(format, Some("JSON"));
    assert_eq!(parameter_default(&raw, "LogRetentionDays").as_deref(), Some("90"));
    let groups = of_type(&raw, "AWS::Logs::LogGroup");
    for (function, _) in functions(&raw) {
        let group = groups.iter().find(|(_, g)| {
            property(g, &["LogGroupName"]).map(sub_text).as_deref() == Some(&format!("/aws/lambda/${{{function}}}"))
        });
        let (id, group) = group.unwrap_or_else(|| panic!("{function}: a log group /aws/lambda/${{{function}}}"));
        assert!(is_ref_to(property(group, &["RetentionInDays"]), "LogRetentionDays"), "{id}");
    }
    for (id, group) in &groups {
        assert!(property(group, &["RetentionInDays"]).is_some(), "{id}: every log group expires");
    }
}

#[test]
fn the_bucket_keeps_old_versions_a_while_and_lets_billing_files_and_reports_expire() {
    let raw = raw();
    let (_, bucket) = resources(&raw).into_iter().find(|(id, _)| id == "BillingBucket").expect("BillingBucket");
    assert_eq!(property(bucket, &["VersioningConfiguration", "Status"]).and_then(Value::as_str), Some("Enabled"));
    let rules = property(bucket, &["LifecycleConfiguration", "Rules"]).and_then(Value::as_sequence).expect("rules");
    for prefix in [cabinet::usecases::import::INCOMING_PREFIX, "reports/"] {
        let rule = rules.iter().find(|r| r.get("Prefix").and_then(Value::as_str) == Some(prefix));
        let rule = rule.unwrap_or_else(|| panic!("a lifecycle rule for {prefix}"));
        assert!(is_ref_to(rule.get("ExpirationInDays"), "BillingFileRetentionDays"), "{prefix}");
        assert_eq!(rule.get("Status").and_then(Value::as_str), Some("Enabled"));
    }
    assert_eq!(parameter_default(&raw, "BillingFileRetentionDays").as_deref(), Some("90"));
    let old_versions = rules.iter().find_map(|r| r.get("NoncurrentVersionExpiration")).expect("old versions expire");
    assert!(number(old_versions.get("NoncurrentDays")) >= 1.0);
}

#[test]
fn every_alarm_tells_the_alarm_email() {
    let raw = raw();
    let (_, topic) = resources(&raw).into_iter().find(|(id, _)| id == "AlarmTopic").expect("AlarmTopic");
    let subscriptions = property(topic, &["Subscription"]).and_then(Value::as_sequence).expect("a subscription");
    assert!(subscriptions.iter().any(|s| {
        s.get("Protocol").and_then(Value::as_str) == Some("email") && is_ref_to(s.get("Endpoint"), "AlarmEmail")
    }));
    let alarms = alarms(&raw);
    assert!(alarms.len() >= 25, "{} alarms", alarms.len());
    for (id, alarm) in &alarms {
        let actions = property(alarm, &["AlarmActions"]).and_then(Value::as_sequence).expect("AlarmActions");
        assert!(actions.iter().any(|a| reference(a).as_deref() == Some("AlarmTopic")), "{id}");
        assert!(property(alarm, &["AlarmDescription"]).and_then(Value::as_str).is_some(), "{id}: says what to do");
    }
}

#[test]
fn every_dead_letter_queue_holding_anything_raises_an_alarm() {
    let raw = raw();
    let mut dead_letter_queues = BTreeSet::new();
    for (_, queue) in of_type(&raw, "AWS::SQS::Queue") {
        if let Some(target) = property(queue, &["RedrivePolicy", "deadLetterTargetArn"]).and_then(reference) {
            dead_letter_queues.insert(target);
        }
    }
    assert_eq!(dead_letter_queues.len(), 3, "{dead_letter_queues:?}");
    for queue in &dead_letter_queues {
        let (id, alarm) = alarm_on(&raw, "AWS/SQS", "ApproximateNumberOfMessagesVisible", Some("QueueName"), queue);
        assert_eq!(number(property(alarm, &["Threshold"])), 0.0, "{id}");
        let comparison = property(alarm, &["ComparisonOperator"]).and_then(Value::as_str);
        assert_eq!(comparison, Some("GreaterThanThreshold"), "{id}: one message is enough");
    }
}

#[test]
fn every_function_has_an_alarm_on_its_errors_and_its_throttles() {
    let raw = raw();
    for (function, _) in functions(&raw) {
        for metric in ["Errors", "Throttles"] {
            let (id, alarm) = alarm_on(&raw, "AWS/Lambda", metric, Some("FunctionName"), &function);
            assert_eq!(number(property(alarm, &["Threshold"])), 1.0, "{id}");
        }
    }
}

#[test]
fn the_api_alarms_on_5xx_and_the_import_near_its_timeout() {
    let raw = raw();
    let (_, api) = alarms(&raw)
        .into_iter()
        .find(|(_, a)| {
            property(a, &["Metrics"]).and_then(Value::as_sequence).into_iter().flatten().any(|m| {
                m.get("MetricStat")
                    .and_then(|s| s.get("Metric"))
                    .and_then(|m| m.get("MetricName"))
                    .and_then(Value::as_str)
                    == Some("5xx")
            })
        })
        .expect("an alarm on the API's 5xx");
    let text = serde_json::to_string(&serde_json::to_value(api).expect("JSON")).expect("text");
    assert!(text.contains("AWS/ApiGateway") && text.contains("HttpApi"), "{text}");

    let (_, import) = functions(&raw).into_iter().find(|(id, _)| id == "ImportAccountsFunction").expect("import");
    let timeout_ms = number(property(import, &["Timeout"])) * 1000.0;
    let (id, alarm) = alarm_on(&raw, "AWS/Lambda", "Duration", Some("FunctionName"), "ImportAccountsFunction");
    let threshold = number(property(alarm, &["Threshold"]));
    assert!((0.7 * timeout_ms..0.95 * timeout_ms).contains(&threshold), "{id}: {threshold} of {timeout_ms} ms");
    assert_eq!(property(alarm, &["Statistic"]).and_then(Value::as_str), Some("Maximum"));
}

#[test]
fn ses_rates_alarm_where_ses_starts_reviewing_the_account() {
    let raw = raw();
    for (metric, level) in [("Reputation.BounceRate", 0.05), ("Reputation.ComplaintRate", 0.001)] {
        let (id, alarm) = alarm_on(&raw, "AWS/SES", metric, None, "");
        assert!((number(property(alarm, &["Threshold"])) - level).abs() < 1e-9, "{id}");
        let comparison = property(alarm, &["ComparisonOperator"]).and_then(Value::as_str);
        assert_eq!(comparison, Some("GreaterThanOrEqualToThreshold"), "{id}");
    }
}

#[test]
fn the_dashboard_shows_the_funnel_the_alarms_and_the_imports() {
    let raw = raw();
    let (_, dashboard) = of_type(&raw, "AWS::CloudWatch::Dashboard").into_iter().next().expect("a dashboard");
    let body = sub_text(property(dashboard, &["DashboardBody"]).expect("DashboardBody"));
    // The namespace the functions write to (Globals' METRICS_NAMESPACE).
    let globals = raw.get("Globals").and_then(|g| g.get("Function")).expect("Globals.Function");
    let variables = globals.get("Environment").and_then(|e| e.get("Variables")).expect("variables");
    let namespace = sub_text(variables.get(cabinet::metrics::NAMESPACE_VARIABLE).expect("METRICS_NAMESPACE"));
    assert!(body.contains(&format!("\"{namespace}\"")), "the funnel's namespace {namespace}");
    // Valid JSON once CloudFormation has put its values in.
    let mut resolved = body.clone();
    while let Some(start) = resolved.find("${") {
        let end = start + resolved[start..].find('}').expect("a closing brace");
        resolved.replace_range(start..=end, "x");
    }
    let parsed: serde_json::Value = serde_json::from_str(&resolved).unwrap_or_else(|e| panic!("JSON: {e}"));
    assert!(parsed["widgets"].as_array().is_some_and(|w| w.len() >= 8));
    for metric in cabinet::metrics::NAMES {
        assert!(body.contains(&format!("\"{metric}\"")) || body.contains(&format!("\\\"{metric}\\\"")), "{metric}");
    }
    for (alarm, _) in alarms(&raw) {
        assert!(body.contains(&format!("${{{alarm}.Arn}}")), "{alarm} on the dashboard");
    }
    assert!(body.contains("${ImportAccountsFunction}"), "the import runs");
}

#[test]
fn password_and_letter_routes_are_throttled_tighter_than_the_stage() {
    let raw = raw();
    let (_, api) = resources(&raw).into_iter().find(|(id, _)| id == "HttpApi").expect("HttpApi");
    let default_rate = number(property(api, &["DefaultRouteSettings", "ThrottlingRateLimit"]));
    let default_burst = number(property(api, &["DefaultRouteSettings", "ThrottlingBurstLimit"]));
    let mut tight = BTreeSet::new();
    for (function, resource) in functions(&raw) {
        for (_, event) in property(resource, &["Events"]).and_then(Value::as_mapping).into_iter().flatten() {
            let Some(settings) = event.get("Properties").and_then(|p| p.get("RouteSettings")) else { continue };
            let route = |key: &str| event.get("Properties").and_then(|p| p.get(key)).and_then(Value::as_str);
            let rate = number(settings.get("ThrottlingRateLimit"));
            let burst = number(settings.get("ThrottlingBurstLimit"));
            assert!(rate < default_rate && burst < default_burst, "{function}: tighter than the stage");
            tight.insert(format!("{} {}", route("Method").unwrap_or_default(), route("Path").unwrap_or_default()));
        }
    }
    let expected = ["POST /login", "POST /password/forgot", "POST /password/reset", "POST /register"];
    assert_eq!(tight, expected.iter().map(|s| (*s).to_owned()).collect());
}

#[test]
fn a_custom_domain_needs_its_certificate_and_the_public_base_url() {
    let raw = raw();
    let rules = raw.get("Rules").and_then(Value::as_mapping).expect("Rules");
    let text = serde_json::to_string(&serde_json::to_value(rules).expect("JSON")).expect("text");
    for parameter in ["DomainName", "CertificateArn", "PublicBaseUrl", "DisableExecuteApiEndpoint"] {
        assert!(text.contains(parameter), "the rules check {parameter}");
    }
    let (_, api) = resources(&raw).into_iter().find(|(id, _)| id == "HttpApi").expect("HttpApi");
    assert!(property(api, &["DisableExecuteApiEndpoint"]).is_some());
    for id in ["ApiDomain", "ApiDomainMapping"] {
        let (_, resource) = resources(&raw).into_iter().find(|(i, _)| i == id).unwrap_or_else(|| panic!("{id}"));
        assert_eq!(resource.get("Condition").and_then(Value::as_str), Some("HasCustomDomain"), "{id}");
    }
    // No domain unless asked for.
    assert_eq!(parameter_default(&raw, "DomainName").as_deref(), Some(""));
}

#[test]
fn deploying_is_configured_and_checked() {
    let root = repo_root();
    let samconfig = std::fs::read_to_string(root.join("samconfig.toml")).expect("a committed samconfig.toml");
    for key in ["[default.deploy.parameters]", "capabilities", "confirm_changeset", "[default.build.parameters]"] {
        assert!(samconfig.contains(key), "samconfig.toml: {key}");
    }
    let ignored = std::fs::read_to_string(root.join(".gitignore")).expect(".gitignore");
    assert!(ignored.lines().any(|l| l.trim().trim_start_matches('/') == ".aws-sam/"), ".aws-sam/ ignored");
    let checks = std::fs::read_to_string(root.join("infra/test.sh")).expect("infra/test.sh");
    assert!(checks.contains("sam validate --lint"), "CI runs sam validate --lint");
    assert!(checks.contains("cfn_lint_serverless"), "CI runs the serverless rules");
    let requirements = std::fs::read_to_string(root.join("infra/requirements.txt")).expect("requirements");
    assert!(requirements.contains("aws-sam-cli==") && requirements.contains("cfn-lint-serverless=="));
}
