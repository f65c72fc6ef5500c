//! A proxy between the functions and the local AWS endpoint (moto) that
//! answers chosen AWS operations the way AWS does when something goes
//! wrong: an error in the service's own wire format (throttling, a 5xx, a
//! refusal), a slow answer, a connection dropped before the request
//! arrives, or an answer lost after the work was done. Every other call
//! goes through unchanged.
//!
//! A test starts one, points the stack's functions at it
//! (`Options::function_endpoint`) and changes its rules while the stack
//! runs: a rule holds until cleared, or for the next N matching calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// What a matching call gets instead of AWS's own answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The service's answer to a caller going too fast: DynamoDB
    /// `ThrottlingException` (400), SQS `RequestThrottled` (400), SES
    /// `TooManyRequestsException` (429), S3 `SlowDown` (503).
    Throttled,
    /// A server error: 500 `InternalServerError` (DynamoDB),
    /// `InternalFailure` (SQS, SES), `InternalError` (S3).
    ServerError,
    /// Any other error answer of the service, e.g. SES `MessageRejected` (400).
    Error { status: u16, code: &'static str },
    /// DynamoDB's `TransactionCanceledException` (400) with these
    /// cancellation reasons, one per item of the transaction in order
    /// (`None`, `TransactionConflict`, `ThrottlingError`, ...): what
    /// DynamoDB answers when another transaction was changing an item.
    /// Nothing is carried out.
    Cancelled(&'static [&'static str]),
    /// The request reaches AWS this much later (and is carried out then,
    /// whether or not the caller still waits); the answer comes after it.
    Delay(Duration),
    /// The connection drops before the request reaches AWS.
    Drop,
    /// The request reaches AWS and is carried out; its answer is lost (the
    /// connection drops).
    LoseAnswer,
}

/// Which calls get a fault, and how many of them.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `Service.Operation` (`DynamoDB.TransactWriteItems`, `SQS.SendMessage`,
    /// `SES.SendEmail`, `S3.GetObject`), or `Service.*` for all of a service.
    operation: String,
    /// Only calls whose request body contains this (e.g. a key prefix).
    containing: Option<String>,
    fault: Fault,
    /// How many more matching calls get the fault; `None`: all, until cleared.
    remaining: Option<u32>,
}

impl Rule {
    /// Every matching call gets `fault` until the rules are cleared.
    pub fn new(operation: &str, fault: Fault) -> Self {
        Self { operation: operation.to_owned(), containing: None, fault, remaining: None }
    }

    /// Only the next `n` matching calls get the fault; the ones after pass.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Only calls whose request body contains `text`.
    pub fn containing(mut self, text: &str) -> Self {
        self.containing = Some(text.to_owned());
        self
    }

    fn matches(&self, operation: &str, body: &str) -> bool {
        let operation_matches = match self.operation.strip_suffix(".*") {
            Some(service) => operation.split('.').next() == Some(service),
            None => self.operation == operation,
        };
        operation_matches
            && self.containing.as_deref().is_none_or(|text| body.contains(text))
            && self.remaining != Some(0)
    }
}

/// A call that went through the proxy.
#[derive(Debug, Clone)]
pub struct Call {
    pub operation: String,
    /// The fault it got, if any.
    pub fault: Option<Fault>,
    /// The request id of an error answer the proxy gave (`x-amzn-RequestId`).
    pub request_id: Option<String>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    calls: Vec<Call>,
    /// DynamoDB's answers to transactions, by `ClientRequestToken`.
    transactions: HashMap<String, Answer>,
}

#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Bytes,
}

pub struct FaultProxy {
    /// Where the functions should send their AWS calls.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The connection is dropped without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `upstream` (moto).
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("a local address"));
        let state = Arc::new(Mutex::new(State::default()));
        let forwarder = Forwarder {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder().build().expect("an HTTP client"),
            state: state.clone(),
        };
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let forwarder = forwarder.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let forwarder = forwarder.clone();
                        async move { forwarder.answer(request).await }
                    });
                    // A dropped connection ends here as an error: nothing to do.
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Self { url, state, task }
    }

    /// Adds a rule after those already there (the first that matches a call applies).
    pub fn add(&self, rule: Rule) {
        self.state.lock().unwrap().rules.push(rule);
    }

    /// Every call of `operation` gets `fault` until cleared.
    pub fn always(&self, operation: &str, fault: Fault) {
        self.add(Rule::new(operation, fault));
    }

    /// The next `n` calls of `operation` get `fault`, the ones after pass.
    pub fn next(&self, n: u32, operation: &str, fault: Fault) {
        self.add(Rule::new(operation, fault).times(n));
    }

    /// The fault clears: every call goes through again.
    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// How many calls of `operation` came through so far.
    pub fn count(&self, operation: &str) -> usize {
        self.calls().iter().filter(|c| c.operation == operation).count()
    }

    /// How many calls of `operation` got a fault so far.
    pub fn faulted(&self, operation: &str) -> usize {
        self.calls().iter().filter(|c| c.operation == operation && c.fault.is_some()).count()
    }
}

#[derive(Clone)]
struct Forwarder {
    upstream: String,
    http: reqwest::Client,
    state: Arc<Mutex<State>>,
}

impl Forwarder {
    async fn answer(&self, request: hyper::Request<Incoming>) -> Result<hyper::Response<Full<Bytes>>, Dropped> {
        let (parts, body) = request.into_parts();
        let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
        let operation = operation(&parts.method, parts.uri.path(), parts.uri.query(), &parts.headers);
        let text = String::from_utf8_lossy(&body).into_owned();
        let (fault, request_id) = {
            let mut state = self.state.lock().unwrap();
            let rule = state.rules.iter_mut().find(|r| r.matches(&operation, &text));
            let fault = rule.map(|rule| {
                if let Some(remaining) = rule.remaining.as_mut() {
                    *remaining -= 1;
                }
                rule.fault.clone()
            });
            let request_id = uuid::Uuid::new_v4().to_string();
            let answered = matches!(
                fault,
                Some(Fault::Throttled | Fault::ServerError | Fault::Error { .. } | Fault::Cancelled(_))
            );
            let call = Call {
                operation: operation.clone(),
                fault: fault.clone(),
                request_id: answered.then(|| request_id.clone()),
            };
            state.calls.push(call);
            (fault, request_id)
        };
        let request = Forwarded { method: parts.method, uri: parts.uri, headers: parts.headers, body, operation };
        let error = |kind| error(&request.operation, kind, &request_id);
        match fault {
            None => Ok(self.forward(request).await?.into_response()),
            Some(Fault::Throttled) => Ok(error(throttled(&request.operation))),
            Some(Fault::ServerError) => Ok(error(server_error(&request.operation))),
            Some(Fault::Error { status, code }) => Ok(error((status, code))),
            Some(Fault::Cancelled(reasons)) => Ok(cancelled(reasons, &request_id)),
            Some(Fault::Delay(delay)) => {
                let forwarder = self.clone();
                // Carried out after the delay even if the caller gave up.
                let late = tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    forwarder.forward(request).await
                });
                Ok(late.await.map_err(|_| Dropped)??.into_response())
            }
            Some(Fault::Drop) => Err(Dropped),
            Some(Fault::LoseAnswer) => {
                let forwarder = self.clone();
                // Carried out in full, even as the connection goes.
                let done = tokio::spawn(async move { forwarder.forward(request).await });
                let _ = done.await;
                Err(Dropped)
            }
        }
    }

    /// Sends the request on to moto and returns its answer. moto ignores a
    /// transaction's `ClientRequestToken`, which DynamoDB honours for ten
    /// minutes (a transaction sent again with the same token, as the SDK
    /// does when it retries, is not applied twice and gets the first
    /// answer): the proxy does it in moto's stead.
    async fn forward(&self, request: Forwarded) -> Result<Answer, Dropped> {
        let token = (request.operation == "DynamoDB.TransactWriteItems")
            .then(|| serde_json::from_slice::<serde_json::Value>(&request.body).ok())
            .flatten()
            .and_then(|body| body.get("ClientRequestToken").and_then(|t| t.as_str()).map(str::to_owned));
        if let Some(answer) = token.as_ref().and_then(|t| self.state.lock().unwrap().transactions.get(t).cloned()) {
            return Ok(answer);
        }
        let path = request.uri.path_and_query().map_or("/", |p| p.as_str());
        let method = reqwest::Method::from_bytes(request.method.as_str().as_bytes()).map_err(|_| Dropped)?;
        let mut headers = request.headers;
        for hop in ["host", "content-length", "connection", "transfer-encoding"] {
            headers.remove(hop);
        }
        let forwarded = self.http.request(method, format!("{}{path}", self.upstream)).headers(headers);
        let response = forwarded.body(request.body).send().await.map_err(|_| Dropped)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "content-length" | "connection" | "transfer-encoding"))
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect();
        let body = response.bytes().await.map_err(|_| Dropped)?;
        let answer = Answer { status, headers, body };
        if let Some(token) = token.filter(|_| (200..300).contains(&status)) {
            self.state.lock().unwrap().transactions.insert(token, answer.clone());
        }
        Ok(answer)
    }
}

/// DynamoDB's answer to a transaction it cancelled, with `reasons`.
fn cancelled(reasons: &[&str], request_id: &str) -> hyper::Response<Full<Bytes>> {
    let listed: Vec<serde_json::Value> = reasons
        .iter()
        .map(|code| match *code {
            "None" => serde_json::json!({"Code": "None"}),
            code => serde_json::json!({"Code": code, "Message": format!("Injected by the fault proxy: {code}")}),
        })
        .collect();
    let body = serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", reasons.join(", ")),
        "CancellationReasons": listed,
    });
    hyper::Response::builder()
        .status(400)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-RequestId", request_id)
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("an error answer")
}

/// An error answer in the wire format of the operation's service, with
/// `request_id` (kept with the call, to be found in the logs).
fn error(operation: &str, (status, code): (u16, &str), request_id: &str) -> hyper::Response<Full<Bytes>> {
    let message = format!("Injected by the fault proxy: {code}");
    let builder = hyper::Response::builder().status(status);
    let (builder, body) = match service(operation) {
        "DynamoDB" => (
            builder.header("content-type", "application/x-amz-json-1.0").header("x-amzn-RequestId", request_id),
            serde_json::json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": message})
                .to_string(),
        ),
        // SQS speaks JSON and says the query protocol's code in a header.
        "SQS" => (
            builder
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amzn-RequestId", request_id)
                .header("x-amzn-query-error", format!("{code};{}", if status >= 500 { "Receiver" } else { "Sender" })),
            serde_json::json!({"__type": format!("com.amazonaws.sqs#{code}"), "message": message}).to_string(),
        ),
        "SES" => (
            builder
                .header("content-type", "application/json")
                .header("x-amzn-RequestId", request_id)
                .header("x-amzn-ErrorType", code),
            serde_json::json!({"message": message}).to_string(),
        ),
        _ => (
            builder.header("content-type", "application/xml").header("x-amz-request-id", request_id),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
            ),
        ),
    };
    builder.body(Full::new(Bytes::from(body))).expect("an error answer")
}

struct Forwarded {
    method: hyper::Method,
    uri: hyper::Uri,
    headers: hyper::HeaderMap,
    body: Bytes,
    operation: String,
}

impl Answer {
    fn into_response(self) -> hyper::Response<Full<Bytes>> {
        let mut builder = hyper::Response::builder().status(self.status);
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        builder.body(Full::new(self.body)).expect("a forwarded answer")
    }
}

fn service(operation: &str) -> &str {
    operation.split('.').next().unwrap_or_default()
}

fn throttled(operation: &str) -> (u16, &'static str) {
    match service(operation) {
        "DynamoDB" => (400, "ThrottlingException"),
        "SQS" => (400, "RequestThrottled"),
        "SES" => (429, "TooManyRequestsException"),
        _ => (503, "SlowDown"),
    }
}

fn server_error(operation: &str) -> (u16, &'static str) {
    match service(operation) {
        "DynamoDB" => (500, "InternalServerError"),
        "SQS" | "SES" => (500, "InternalFailure"),
        _ => (500, "InternalError"),
    }
}

/// `Service.Operation` of a request: JSON protocols (DynamoDB, SQS) by
/// `X-Amz-Target`, SES v2 and S3 by method and path.
fn operation(method: &hyper::Method, path: &str, query: Option<&str>, headers: &hyper::HeaderMap) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|t| t.to_str().ok()) {
        let (prefix, name) = target.split_once('.').unwrap_or((target, ""));
        let service = match prefix {
            p if p.starts_with("DynamoDB") => "DynamoDB",
            "AmazonSQS" => "SQS",
            other => other,
        };
        return format!("{service}.{name}");
    }
    if let Some(rest) = path.strip_prefix("/v2/email/") {
        return match (method.as_str(), rest) {
            ("POST", "outbound-emails") => "SES.SendEmail".to_owned(),
            _ => format!("SES.{method} {rest}"),
        };
    }
    if path.starts_with("/moto-api") {
        return "moto-api".to_owned();
    }
    let has_key = path.trim_start_matches('/').contains('/');
    let tagging = query.is_some_and(|q| q.split('&').any(|p| p == "tagging" || p.starts_with("tagging=")));
    let name = match (method.as_str(), has_key, tagging) {
        ("GET", true, true) => "GetObjectTagging",
        ("PUT", true, true) => "PutObjectTagging",
        ("GET", true, false) => "GetObject",
        ("PUT", true, false) => "PutObject",
        ("HEAD", true, _) => "HeadObject",
        ("DELETE", true, _) => "DeleteObject",
        _ => return format!("S3.{method} {path}"),
    };
    format!("S3.{name}")
}
