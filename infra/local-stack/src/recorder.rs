//! Which AWS calls each function makes, as IAM sees them: an interceptor on
//! every SDK client of a function records the action (`dynamodb:PutItem`,
//! one per item of a transaction) and the resource (table, queue, sender)
//! of each request it sends. Tests compare these with the function's policy
//! in template.yaml. It also keeps each request's operation and when it was
//! sent and answered, so tests can count a function's round trips.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde_json::Value;

/// One permission a request needed: which function, which IAM action, on
/// what (a physical table name, queue URL, `ses` sender, or S3 key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SdkCall {
    pub function: String,
    pub action: String,
    pub resource: String,
}

/// One request a function sent to AWS (each attempt counts): its
/// operation (`dynamodb:GetItem`, `ses:SendEmail`…), when it was sent and
/// when its answer came.
#[derive(Debug, Clone)]
pub struct Operation {
    pub function: String,
    pub name: String,
    pub sent: Instant,
    pub answered: Option<Instant>,
}

#[derive(Debug, Clone, Default)]
pub struct Calls {
    permissions: Arc<Mutex<Vec<SdkCall>>>,
    operations: Arc<Mutex<Vec<Operation>>>,
}

impl Calls {
    pub fn all(&self) -> Vec<SdkCall> {
        self.permissions.lock().map(|calls| calls.clone()).unwrap_or_default()
    }

    fn push(&self, call: SdkCall) {
        if let Ok(mut calls) = self.permissions.lock() {
            calls.push(call);
        }
    }

    /// Every request sent so far, in the order they were sent.
    pub fn operations(&self) -> Vec<Operation> {
        self.operations.lock().map(|operations| operations.clone()).unwrap_or_default()
    }

    fn sent(&self, operation: Operation) -> Option<usize> {
        let mut operations = self.operations.lock().ok()?;
        operations.push(operation);
        Some(operations.len() - 1)
    }

    fn answered(&self, index: usize) {
        if let Some(operation) = self.operations.lock().ok().as_mut().and_then(|o| o.get_mut(index)) {
            operation.answered = Some(Instant::now());
        }
    }
}

/// Round trips one after another among `operations`: a request sent
/// before any answer of the current round came is part of that round (it
/// was not waiting for them); one sent later starts the next round.
pub fn sequential_rounds(operations: &[Operation]) -> usize {
    let mut sorted: Vec<&Operation> = operations.iter().collect();
    sorted.sort_by_key(|o| o.sent);
    let mut rounds = 0;
    let mut first_answer: Option<Instant> = None;
    for operation in sorted {
        match first_answer {
            Some(answer) if operation.sent < answer => {
                first_answer = Some(answer.min(operation.answered.unwrap_or(answer)));
            }
            _ => {
                rounds += 1;
                first_answer = Some(operation.answered.unwrap_or(operation.sent));
            }
        }
    }
    rounds
}

/// Where in `Calls::operations` this request's attempt is.
#[derive(Debug, Clone, Copy)]
struct OperationIndex(usize);

impl Storable for OperationIndex {
    type Storer = StoreReplace<Self>;
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
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request();
        let name = operation_name(request);
        let sent = Operation { function: self.function.clone(), name, sent: Instant::now(), answered: None };
        if let Some(index) = self.calls.sent(sent) {
            cfg.interceptor_state().store_put(OperationIndex(index));
        }
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

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(OperationIndex(index)) = cfg.load::<OperationIndex>() {
            self.calls.answered(*index);
        }
        Ok(())
    }
}

/// The operation a request is for, e.g. `dynamodb:GetItem`.
fn operation_name(request: &aws_sdk_dynamodb::config::http::HttpRequest) -> String {
    let target = request.headers().get("x-amz-target").unwrap_or_default();
    if let Some(operation) = target.strip_prefix("DynamoDB_20120810.") {
        format!("dynamodb:{operation}")
    } else if let Some(operation) = target.strip_prefix("AmazonSQS.") {
        format!("sqs:{operation}")
    } else if request.uri().contains("/v2/email/") {
        "ses:SendEmail".to_owned()
    } else {
        format!("s3:{}", request.method())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn operation(start: Instant, sent_ms: u64, answered_ms: u64) -> Operation {
        Operation {
            function: "f".into(),
            name: "dynamodb:GetItem".into(),
            sent: start + Duration::from_millis(sent_ms),
            answered: Some(start + Duration::from_millis(answered_ms)),
        }
    }

    #[test]
    fn requests_in_flight_together_are_one_round_and_a_request_after_an_answer_the_next() {
        let t = Instant::now();
        assert_eq!(sequential_rounds(&[]), 0);
        // Three one after another.
        assert_eq!(sequential_rounds(&[operation(t, 0, 5), operation(t, 6, 9), operation(t, 10, 12)]), 3);
        // Two sent together, then one after the first answer.
        assert_eq!(sequential_rounds(&[operation(t, 0, 5), operation(t, 1, 8), operation(t, 6, 9)]), 2);
        // Order of recording does not matter.
        assert_eq!(sequential_rounds(&[operation(t, 6, 9), operation(t, 1, 8), operation(t, 0, 5)]), 2);
    }
}
