//! Which AWS calls each function makes, as IAM sees them: an interceptor on
//! every SDK client of a function records the action (`dynamodb:PutItem`,
//! one per item of a transaction) and the resource (table, queue, sender)
//! of each request it sends. Tests compare these with the function's policy
//! in template.yaml.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use serde_json::Value;

/// One permission a request needed: which function, which IAM action, on
/// what (a physical table name, queue URL, `ses` sender, or S3 key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SdkCall {
    pub function: String,
    pub action: String,
    pub resource: String,
}

#[derive(Debug, Clone, Default)]
pub struct Calls(Arc<Mutex<Vec<SdkCall>>>);

impl Calls {
    pub fn all(&self) -> Vec<SdkCall> {
        self.0.lock().map(|calls| calls.clone()).unwrap_or_default()
    }

    fn push(&self, call: SdkCall) {
        if let Ok(mut calls) = self.0.lock() {
            calls.push(call);
        }
    }
}

#[derive(Debug)]
pub struct Recorder {
    pub function: String,
    pub calls: Calls,
}

fn table_names(body: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    // TransactWriteItems: one permission per item.
    for item in body.get("TransactItems").and_then(Value::as_array).into_iter().flatten() {
        for (kind, action) in [
            ("Put", "PutItem"),
            ("Update", "UpdateItem"),
            ("Delete", "DeleteItem"),
            ("ConditionCheck", "ConditionCheckItem"),
        ] {
            if let Some(table) = item.get(kind).and_then(|k| k.get("TableName")).and_then(Value::as_str) {
                found.push((format!("dynamodb:{action}"), table.to_owned()));
            }
        }
    }
    found
}

impl Recorder {
    fn record(&self, action: String, resource: String) {
        self.calls.push(SdkCall { function: self.function.clone(), action, resource });
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "PermissionRecorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request();
        let body: Value = request.body().bytes().and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null);
        let target = request.headers().get("x-amz-target").unwrap_or_default().to_owned();
        if let Some(operation) = target.strip_prefix("DynamoDB_20120810.") {
            if operation == "TransactWriteItems" {
                for (action, table) in table_names(&body) {
                    self.record(action, table);
                }
            } else if let Some(items) = body.get("RequestItems").and_then(Value::as_object) {
                for table in items.keys() {
                    self.record(format!("dynamodb:{operation}"), table.clone());
                }
            } else {
                let table = body.get("TableName").and_then(Value::as_str).unwrap_or_default();
                self.record(format!("dynamodb:{operation}"), table.to_owned());
            }
        } else if let Some(operation) = target.strip_prefix("AmazonSQS.") {
            let queue = body.get("QueueUrl").and_then(Value::as_str).unwrap_or_default();
            self.record(format!("sqs:{operation}"), queue.to_owned());
        } else if request.uri().contains("/v2/email/outbound-emails") {
            self.record("ses:SendEmail".to_owned(), "ses".to_owned());
        } else {
            // S3 (the import): object operations by method and query.
            let uri = request.uri().to_owned();
            let action = match (request.method(), uri.contains("tagging")) {
                ("GET", true) => "s3:GetObjectTagging",
                ("PUT", true) => "s3:PutObjectTagging",
                ("GET" | "HEAD", false) => "s3:GetObject",
                ("PUT", false) => "s3:PutObject",
                (other, _) => other,
            };
            self.record(action.to_owned(), uri);
        }
        Ok(())
    }
}
