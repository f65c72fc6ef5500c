//! Serves every HTTP function's router behind one listener, turning each
//! request into the `lambda_http::Request` API Gateway would hand them.

use std::collections::HashMap;
use std::convert::Infallible;

use askama::Template;
use bytes::Bytes;
use cabinet::errors::{ErrorBody, ErrorCode, FieldError};
use cabinet::web::{self, Face};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::RequestExt;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::request::RequestContext;
use std::net::IpAddr;

use crate::mailbox::{self, SentLetter};

#[derive(Clone)]
pub struct State {
    /// Every HTTP function's router, each with its own adapters (recording
    /// its calls), merged.
    pub router: axum::Router,
    pub endpoint: String,
    pub http: reqwest::Client,
    /// `host:port` the stack listens on: API Gateway's `domainName`.
    pub domain: String,
    /// How long a request may take before it is answered 503 (see
    /// `Options::request_budget`).
    pub budget: Option<std::time::Duration>,
}

/// API Gateway's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;

pub async fn serve(listener: tokio::net::TcpListener, state: State) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(&state, request, peer.ip()).await) }
            });
            if let Err(error) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}

async fn answer(state: &State, request: hyper::Request<Incoming>, peer: IpAddr) -> hyper::Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let response = match (request.method().as_str(), path.as_str()) {
        ("GET", "/_local/mail") => mail_page(state).await,
        ("GET", "/_local/mail.json") => mail_json(state).await,
        _ => match to_lambda(request, peer, &state.domain).await {
            Ok(lambda_request) => route(state, lambda_request).await,
            Err(response) => response,
        },
    };
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Bytes::new(),
        lambda_http::Body::Text(text) => Bytes::from(text),
        lambda_http::Body::Binary(data) => Bytes::from(data),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

async fn to_lambda(
    request: hyper::Request<Incoming>,
    peer: IpAddr,
    domain: &str,
) -> Result<lambda_http::Request, lambda_http::Response<lambda_http::Body>> {
    let (mut parts, body) = request.into_parts();
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let errors =
                ErrorBody::new(vec![FieldError::general(ErrorCode::PayloadTooLarge, "Слишком большой запрос.")]);
            return Err(web::json(413, &errors));
        }
    };
    let query: Vec<(String, String)> =
        parts.uri.query().map(|q| serde_urlencoded::from_str(q).unwrap_or_default()).unwrap_or_default();
    let mut grouped: HashMap<String, Vec<String>> = HashMap::new();
    for (key, value) in query {
        grouped.entry(key).or_default().push(value);
    }
    parts.headers.insert("x-forwarded-proto", http::HeaderValue::from_static("http"));
    let body = if bytes.is_empty() { lambda_http::Body::Empty } else { lambda_http::Body::Binary(bytes.to_vec()) };
    // The source address, where API Gateway puts it.
    let mut context = ApiGatewayV2httpRequestContext::default();
    context.http.source_ip = Some(peer.to_string());
    // The domain the request came to, as API Gateway sets it (not the Host
    // header, which the caller chooses).
    context.domain_name = Some(domain.to_owned());
    Ok(lambda_http::Request::from_parts(parts, body)
        .with_query_string_parameters(QueryMap::from(grouped))
        .with_request_context(RequestContext::ApiGatewayV2(context)))
}

async fn route(state: &State, request: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
    let face = Face::of(&request);
    let handled = web::routes::dispatch(&state.router, request);
    // What the Lambda runtime's deadline does through `web::run_http`.
    match state.budget {
        Some(budget) => web::answer_within(budget, face, handled).await,
        None => handled.await,
    }
}

#[derive(Template)]
#[template(
    source = r#"<!doctype html><html lang="ru"><head><meta charset="utf-8"><title>Локальная почта</title></head>
<body style="font-family: sans-serif; max-width: 800px; margin: 0 auto;">
<h1>Письма, отправленные локально ({{ letters.len() }})</h1>
{% for l in letters.iter().rev() %}<section style="border: 1px solid #ccc; margin: 16px 0; padding: 8px;">
<p><b>Кому:</b> {{ l.to.join(", ") }}<br><b>Тема:</b> {{ l.subject }}</p>
<div>{{ l.html|safe }}</div></section>{% endfor %}
</body></html>"#,
    ext = "html"
)]
struct MailPage {
    letters: Vec<SentLetter>,
}

async fn mail_page(state: &State) -> lambda_http::Response<lambda_http::Body> {
    match mailbox::sent_letters(&state.http, &state.endpoint, None).await {
        Ok(letters) => {
            let mut response = web::html(200, &MailPage { letters });
            // The letters' own HTML is shown as is: relax the policy for this
            // local-only page.
            response.headers_mut().remove(http::header::CONTENT_SECURITY_POLICY);
            response
        }
        Err(error) => web::json(502, &serde_json::json!({"error": error.to_string()})),
    }
}

async fn mail_json(state: &State) -> lambda_http::Response<lambda_http::Body> {
    match mailbox::sent_letters(&state.http, &state.endpoint, None).await {
        Ok(letters) => web::json(200, &letters),
        Err(error) => web::json(502, &serde_json::json!({"error": error.to_string()})),
    }
}
