//! A minimal Lambda Runtime API on loopback: what Lambda serves a custom
//! runtime (`provided.al2023`) at `AWS_LAMBDA_RUNTIME_API`. The function's
//! process asks for the next event (a long poll), then posts its answer or
//! its error; a process that cannot start posts an init error (or exits).
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot, watch};

const VERSION: &str = "/2018-06-01/runtime";

/// How an invocation ended, as the function posted it.
#[derive(Debug)]
pub enum Outcome {
    /// `POST /runtime/invocation/{id}/response`.
    Response(Bytes),
    /// `POST /runtime/invocation/{id}/error`, with its
    /// `Lambda-Runtime-Function-Error-Type`.
    Error { error_type: String, body: Bytes },
}

struct Event {
    request_id: String,
    payload: Bytes,
    timeout: Duration,
}

struct State {
    function_arn: String,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>,
    /// Invocations handed out and not answered yet, by request id.
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// Start-up failures the runtime reported (`/runtime/init/error`).
    init_errors: Mutex<Vec<String>>,
    /// How many times the function asked for an event: once it has, it
    /// started.
    polls: watch::Sender<usize>,
}

pub struct RuntimeApi {
    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub address: SocketAddr,
    state: Arc<State>,
    events: mpsc::UnboundedSender<Event>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    pub async fn start(function_arn: &str) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let (events, receiver) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            function_arn: function_arn.to_owned(),
            events: tokio::sync::Mutex::new(receiver),
            pending: Mutex::new(HashMap::new()),
            init_errors: Mutex::new(Vec::new()),
            polls: watch::channel(0).0,
        });
        let server = tokio::spawn(serve(listener, state.clone()));
        Ok(Self { address, state, events, server })
    }

    /// Queues `payload` for the function; the receiver gets its outcome.
    /// `timeout` sets the deadline the function is given.
    pub fn invoke(&self, payload: Bytes, timeout: Duration) -> (String, oneshot::Receiver<Outcome>) {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (sender, receiver) = oneshot::channel();
        self.state.pending.lock().unwrap().insert(request_id.clone(), sender);
        // The receiver lives in the state as long as `self`.
        let _ = self.events.send(Event { request_id: request_id.clone(), payload, timeout });
        (request_id, receiver)
    }

    /// How many times the function has asked for an event.
    pub fn polls(&self) -> usize {
        *self.state.polls.borrow()
    }

    pub fn init_errors(&self) -> Vec<String> {
        self.state.init_errors.lock().unwrap().clone()
    }
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(&state, request).await) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn reply(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    response
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

/// An X-Ray trace header as Lambda passes it.
fn trace_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{:08x}-{};Parent={};Sampled=0", now_ms() / 1000, &id[..24], &id[16..])
}

async fn answer(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(VERSION) else {
        return reply(StatusCode::NOT_FOUND, r#"{"errorType":"NotFound"}"#);
    };
    let method = request.method().clone();
    match (method, rest.split('/').collect::<Vec<_>>().as_slice()) {
        (Method::GET, ["", "invocation", "next"]) => {
            state.polls.send_modify(|polls| *polls += 1);
            // A long poll: the function waits here between invocations.
            let Some(event) = state.events.lock().await.recv().await else {
                return reply(StatusCode::GONE, r#"{"errorType":"Shutdown"}"#);
            };
            let deadline = now_ms() + event.timeout.as_millis();
            let mut response = Response::new(Full::new(event.payload));
            let headers = response.headers_mut();
            headers.insert("content-type", "application/json".parse().unwrap());
            headers.insert("lambda-runtime-aws-request-id", event.request_id.parse().unwrap());
            headers.insert("lambda-runtime-deadline-ms", deadline.to_string().parse().unwrap());
            headers.insert("lambda-runtime-invoked-function-arn", state.function_arn.parse().unwrap());
            headers.insert("lambda-runtime-trace-id", trace_id().parse().unwrap());
            response
        }
        (Method::POST, ["", "invocation", request_id, kind @ ("response" | "error")]) => {
            let error_type = request
                .headers()
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("Unhandled")
                .to_owned();
            let body = match request.into_body().collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => return reply(StatusCode::BAD_REQUEST, r#"{"errorType":"InvalidRequestContent"}"#),
            };
            let Some(waiting) = state.pending.lock().unwrap().remove(*request_id) else {
                return reply(StatusCode::BAD_REQUEST, r#"{"errorType":"InvalidRequestID"}"#);
            };
            let outcome =
                if *kind == "response" { Outcome::Response(body) } else { Outcome::Error { error_type, body } };
            let _ = waiting.send(outcome);
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        (Method::POST, ["", "init", "error"]) => {
            let error_type = request
                .headers()
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("Unknown")
                .to_owned();
            let body = request.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            state.init_errors.lock().unwrap().push(format!("{error_type}: {}", String::from_utf8_lossy(&body)));
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => reply(StatusCode::NOT_FOUND, r#"{"errorType":"NotFound"}"#),
    }
}
