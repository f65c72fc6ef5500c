//! The residents' funnel as CloudWatch metrics, from the log lines that
//! already say what happened: no extra AWS call. A log event that carries a
//! `metric` field is written as a CloudWatch Embedded Metric Format (EMF)
//! document: the same JSON line, plus the `_aws` object, the metric values
//! and the `Outcome` dimension at its top level, where CloudWatch Logs looks
//! for them (the rest of the line stays as it was, under `fields`).
//!
//! `metric` lists the metrics of the line, comma-separated: `Name` counts 1,
//! `Name=field` takes the value of the event's numeric field `field`. The
//! optional `outcome` field becomes the `Outcome` dimension; it must be a
//! code (`name_mismatch`), never anything a resident typed. Nothing else of
//! the event reaches the metric.
//!
//! ```ignore
//! tracing::info!(metric = metrics::REGISTRATIONS, outcome = "name_mismatch", "registration refused");
//! tracing::info!(metric = "ImportRowsLoaded=loaded", loaded = 10_u64, "billing file imported");
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::errors::ErrorCode;

/// The variable naming the CloudWatch namespace (template.yaml sets it to
/// `Cabinet/<stack name>`, so two stacks in one account do not mix).
pub const NAMESPACE_VARIABLE: &str = "METRICS_NAMESPACE";
/// The namespace when the variable is not set.
pub const DEFAULT_NAMESPACE: &str = "Cabinet";

/// Registration attempts, by outcome: `registered` or the error code of
/// each field that was refused (an attempt refused for two fields counts
/// under both), `rate_limited`, `registration_paused`, `unavailable`, `internal`.
pub const REGISTRATIONS: &str = "Registrations";
/// Addresses confirmed by their link (`Outcome=confirmed`).
pub const CONFIRMATIONS: &str = "Confirmations";
/// Identifications decided: `active`, `account_vanished`, `payer_changed`.
pub const IDENTIFICATIONS: &str = "Identifications";
/// Login attempts, by outcome: `logged_in`, `invalid_credentials`,
/// `email_not_confirmed`, `identification_pending`, `identification_failed`,
/// `rate_limited`, `unavailable`, `internal`.
pub const LOGINS: &str = "Logins";
/// Login locks begun (five failures in a row, and each failure after).
pub const LOCKOUTS: &str = "Lockouts";
/// The rows of each imported billing file, as its report counts them.
pub const IMPORT_ROWS: &str = "ImportRowsLoaded=loaded,ImportRowsRejected=rejected,ImportRowsSkipped=skipped";

/// Every metric name the functions emit, for the dashboard and its test.
pub const NAMES: [&str; 8] = [
    REGISTRATIONS,
    CONFIRMATIONS,
    IDENTIFICATIONS,
    LOGINS,
    LOCKOUTS,
    "ImportRowsLoaded",
    "ImportRowsRejected",
    "ImportRowsSkipped",
];

/// The name of the dimension the `outcome` field fills.
pub const OUTCOME_DIMENSION: &str = "Outcome";

/// The outcome code of an error, as the JSON contract spells it.
pub fn code(code: ErrorCode) -> String {
    match serde_json::to_value(code) {
        Ok(Value::String(code)) => code,
        _ => "internal".to_owned(),
    }
}

/// The namespace of this process: `METRICS_NAMESPACE`, else `Cabinet`.
pub fn namespace() -> String {
    std::env::var(NAMESPACE_VARIABLE).ok().filter(|n| !n.is_empty()).unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
}

/// Adds the EMF members to a log line (a JSON object): `_aws` with the
/// timestamp (milliseconds) and the metric definitions, each metric's value
/// and, when there is an outcome, the `Outcome` dimension. `spec` is the
/// `metric` field; `numbers` the event's numeric fields.
pub fn embed(
    line: &mut Map<String, Value>,
    namespace: &str,
    spec: &str,
    numbers: &BTreeMap<String, f64>,
    outcome: Option<&str>,
    timestamp_ms: u64,
) {
    let mut definitions = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, value) = match entry.split_once('=') {
            Some((name, field)) => match numbers.get(field.trim()) {
                Some(value) => (name.trim(), *value),
                None => continue,
            },
            None => (entry, 1.0),
        };
        definitions.push(json!({"Name": name, "Unit": "Count"}));
        line.insert(name.to_owned(), json!(value));
    }
    let dimensions: Vec<&str> = match outcome {
        Some(outcome) => {
            line.insert(OUTCOME_DIMENSION.to_owned(), json!(outcome));
            vec![OUTCOME_DIMENSION]
        }
        None => Vec::new(),
    };
    line.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [dimensions], "Metrics": definitions}],
        }),
    );
}

/// The fields of an event the metrics read.
#[derive(Default)]
struct MetricFields {
    metric: Option<String>,
    outcome: Option<String>,
    numbers: BTreeMap<String, f64>,
}

impl Visit for MetricFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "metric" => self.metric = Some(value.to_owned()),
            "outcome" => self.outcome = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        #[allow(clippy::cast_precision_loss)]
        self.numbers.insert(field.name().to_owned(), value as f64);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        #[allow(clippy::cast_precision_loss)]
        self.numbers.insert(field.name().to_owned(), value as f64);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.numbers.insert(field.name().to_owned(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if matches!(field.name(), "metric" | "outcome") {
            self.record_str(field, &format!("{value:?}"));
        }
    }
}

/// The event format of every function: `inner` (tracing-subscriber's JSON
/// lines), with the EMF members added to the lines that carry `metric`.
pub struct Emf<F> {
    inner: F,
    namespace: String,
}

impl<F> Emf<F> {
    pub fn new(inner: F, namespace: String) -> Self {
        Self { inner, namespace }
    }
}

impl<S, N, F> FormatEvent<S, N> for Emf<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let mut fields = MetricFields::default();
        event.record(&mut fields);
        let Some(spec) = fields.metric.as_deref() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        match serde_json::from_str::<Map<String, Value>>(line.trim_end()) {
            Ok(mut object) => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
                embed(&mut object, &self.namespace, spec, &fields.numbers, fields.outcome.as_deref(), now_ms);
                writeln!(writer, "{}", Value::Object(object))
            }
            // Not a JSON object (another inner format): written as it was.
            Err(_) => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines `log` writes through the functions' own log format.
    fn lines(log: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        tracing::subscriber::with_default(crate::web::json_logs(move || writer.clone(), "info"), log);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
    }

    #[test]
    fn a_line_with_a_metric_is_an_emf_document_with_aws_at_the_top_level() {
        let lines = lines(|| {
            tracing::info!(metric = REGISTRATIONS, outcome = "name_mismatch", "registration refused");
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        // The log line as it always was.
        assert_eq!(line["fields"]["message"], "registration refused");
        assert_eq!(line["level"], "INFO");
        // The EMF members, at the top level.
        let aws = line["_aws"].as_object().expect("_aws is an object at the top level");
        assert!(aws["Timestamp"].as_u64().is_some_and(|t| t > 1_700_000_000_000), "milliseconds: {aws:?}");
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], DEFAULT_NAMESPACE);
        assert_eq!(directive["Dimensions"], json!([["Outcome"]]));
        assert_eq!(directive["Metrics"], json!([{"Name": "Registrations", "Unit": "Count"}]));
        assert_eq!(line["Registrations"], json!(1.0));
        assert_eq!(line["Outcome"], "name_mismatch");
    }

    #[test]
    fn values_come_from_the_named_numeric_fields_and_no_outcome_means_no_dimension() {
        let lines = lines(|| {
            tracing::info!(
                metric = IMPORT_ROWS,
                rows_read = 12_u64,
                loaded = 9_u64,
                rejected = 2_u64,
                skipped = 1_u64,
                status = "ok",
                "billing file imported"
            );
        });
        let line = &lines[0];
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"], json!([[]]));
        let names: Vec<&str> =
            directive["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect();
        assert_eq!(names, ["ImportRowsLoaded", "ImportRowsRejected", "ImportRowsSkipped"]);
        assert_eq!((line["ImportRowsLoaded"].as_f64(), line["ImportRowsRejected"].as_f64()), (Some(9.0), Some(2.0)));
        assert_eq!(line["ImportRowsSkipped"].as_f64(), Some(1.0));
        // Only the listed fields become metrics.
        assert!(line.get("rows_read").is_none() && line.get("Outcome").is_none());
        assert_eq!(line["fields"]["rows_read"], 12);
    }

    #[test]
    fn a_line_without_a_metric_is_left_as_it_was() {
        let lines = lines(|| tracing::info!(outcome = "x", "letter sent"));
        assert!(lines[0].get("_aws").is_none());
        assert_eq!(lines[0]["fields"]["message"], "letter sent");
    }

    #[test]
    fn only_the_outcome_code_and_the_values_reach_the_metric() {
        let lines = lines(|| {
            tracing::info!(metric = LOGINS, outcome = "logged_in", account = "100200300", "logged in");
        });
        let line = lines[0].as_object().unwrap();
        let top: Vec<&str> = line.keys().map(String::as_str).collect();
        for key in &top {
            assert!(
                ["level", "fields", "target", "spans", "_aws", "Logins", "Outcome"].contains(key),
                "{key} at the top"
            );
        }
        assert!(!line["_aws"].to_string().contains("100200300"));
    }

    #[test]
    fn error_codes_are_named_as_the_contract_names_them() {
        assert_eq!(code(ErrorCode::AccountNotFound), "account_not_found");
        assert_eq!(code(ErrorCode::EmailSuggestion), "email_suggestion");
    }
}
