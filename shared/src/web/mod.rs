//! The HTTP edge shared by the function crates: which face a request wants
//! (HTML form posts or JSON), reading its body, and building answers with
//! the right headers.

pub mod messages;
pub mod pages;
pub mod routes;

use askama::Template;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::audit::Requester;
use crate::config::Config;
use crate::errors::{ErrorBody, ErrorCode, Field, FieldError, Unexpected};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use pages::MessagePage;

/// Largest request body accepted; a registration form is well under 2 KiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Name of the session cookie. The `__Host-` prefix makes browsers accept
/// it only with `Secure`, `Path=/` and no `Domain`, so a sibling subdomain
/// cannot set or shadow it.
pub const SESSION_COOKIE: &str = "__Host-session";

/// Name of the cookie of a browser that logged in before (see
/// `usecases::login::DEVICE_LIFETIME`).
pub const DEVICE_COOKIE: &str = "__Host-device";

/// Content-Security-Policy of every page: no inline or foreign script, no
/// framing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// HTML pages for browsers, JSON for other clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Html,
    Json,
}

fn header_str(request: &Request, name: header::HeaderName) -> &str {
    request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

impl Face {
    /// HTML for browsers: a GET that accepts HTML, or a form post. Anything
    /// else (JSON, or a body of a type we do not take) is answered in JSON.
    pub fn of(request: &Request) -> Self {
        let content_type = header_str(request, header::CONTENT_TYPE).to_ascii_lowercase();
        let accept = header_str(request, header::ACCEPT).to_ascii_lowercase();
        let wants_json_only = accept.contains("application/json") && !accept.contains("text/html");
        let has_body = !request.body().as_ref().is_empty() || !content_type.is_empty();
        let form = content_type.starts_with("application/x-www-form-urlencoded")
            || content_type.starts_with("multipart/form-data");
        match (has_body, form) {
            (true, true) => Face::Html,
            (true, false) => Face::Json,
            (false, _) if wants_json_only => Face::Json,
            (false, _) => Face::Html,
        }
    }
}

/// Why a request body could not be read.
pub fn body_error(code: ErrorCode, message: &str) -> ErrorBody {
    ErrorBody::new(vec![FieldError::general(code, message)])
}

/// Longest value of any one field, in characters: the longest real one (an
/// e-mail address) is 254.
pub const MAX_FIELD_CHARS: usize = 256;

/// Refuses a field that is too long or holds control characters other than
/// whitespace (NUL, escape...). Tabs, line breaks and the other
/// [`crate::text::WHITESPACE_CONTROLS`] pass: copy-paste brings them, and
/// every field folds them like spaces (a password keeps them as typed).
fn check_field(name: &str, value: &str) -> Option<FieldError> {
    let field = Field::from_name(name);
    let label = field.map_or("Поле", Field::label);
    let error = |message: String| {
        Some(match field {
            Some(field) => FieldError::field(field, ErrorCode::Invalid, message),
            None => FieldError::general(ErrorCode::Invalid, message),
        })
    };
    if value.chars().count() > MAX_FIELD_CHARS {
        return error(format!("«{label}»: слишком длинное значение (больше {MAX_FIELD_CHARS} символов)."));
    }
    // Form decoding turns bytes that are not UTF-8 into U+FFFD.
    if value.contains('\u{FFFD}') {
        return error(format!("«{label}»: значение содержит символы в неизвестной кодировке. Отправьте его в UTF-8."));
    }
    if let Some(control) = crate::text::forbidden_control(value) {
        return error(format!(
            "«{label}»: значение содержит служебный символ (код U+{:04X}), которого не бывает в том, что вводят с клавиатуры. Введите значение заново, не копируя его.",
            u32::from(control)
        ));
    }
    None
}

/// Decodes a form post or a JSON body into `T`, refusing other content
/// types, oversized bodies, bodies that are not UTF-8 and fields that are
/// too long or hold control characters other than whitespace.
pub fn read_body<T: DeserializeOwned>(request: &Request) -> Result<T, ErrorBody> {
    let (value, problems) = read_form(request)?;
    if problems.is_empty() { Ok(value) } else { Err(ErrorBody::new(problems)) }
}

/// As [`read_body`], but a field that is too long or holds a control
/// character comes back as a field error beside the decoded form, so that
/// a page can show the form again with the error by its field.
pub fn read_form<T: DeserializeOwned>(request: &Request) -> Result<(T, Vec<FieldError>), ErrorBody> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(body_error(ErrorCode::PayloadTooLarge, "Слишком большой запрос."));
    }
    let content_type = header_str(request, header::CONTENT_TYPE).to_ascii_lowercase();
    if std::str::from_utf8(bytes).is_err() {
        return Err(body_error(
            ErrorCode::Invalid,
            "Запрос содержит символы в неизвестной кодировке. Отправьте его в UTF-8.",
        ));
    }
    if content_type.starts_with("application/json") {
        let not_an_object = || body_error(ErrorCode::Invalid, "Тело запроса — не объект JSON с ожидаемыми полями.");
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| not_an_object())?;
        let object = value.as_object().ok_or_else(not_an_object)?;
        let problems = object.iter().filter_map(|(name, field)| check_field(name, field.as_str()?)).collect::<Vec<_>>();
        Ok((serde_json::from_value(value).map_err(|_| not_an_object())?, problems))
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let malformed = || body_error(ErrorCode::Invalid, "Форма отправлена в неверном виде.");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).map_err(|_| malformed())?;
        let problems = pairs.iter().filter_map(|(name, value)| check_field(name, value)).collect::<Vec<_>>();
        Ok((serde_urlencoded::from_bytes(bytes).map_err(|_| malformed())?, problems))
    } else {
        Err(body_error(
            ErrorCode::UnsupportedMediaType,
            "Отправьте данные как application/json или как форму (application/x-www-form-urlencoded).",
        ))
    }
}

/// Who sent the request, as API Gateway saw them.
pub fn requester(request: &Request) -> Requester {
    let ip = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        _ => None,
    };
    Requester::new(ip.unwrap_or_else(|| "unknown".to_owned()))
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url.get(after_scheme..).and_then(|rest| rest.find('/')).map_or(url.len(), |i| i + after_scheme);
    url.get(..end).unwrap_or(url)
}

/// Refuses a state-changing request sent from another site (CSRF). The
/// session cookie is SameSite=Lax already; on top of that a post must come
/// from a page of the cabinet: its `Origin` (or, without one, `Referer`)
/// must be the cabinet's own. JSON posts cannot be sent cross-site without
/// a CORS preflight, which is never granted, so they may come without
/// either header (scripts, mobile clients).
pub fn refuse_cross_site(config: &Config, request: &Request) -> Result<(), ErrorBody> {
    let own = |url: &str| {
        let origin = origin_of(url);
        origin.eq_ignore_ascii_case(origin_of(&base_url(config, request)))
            || origin.eq_ignore_ascii_case(&request_origin(request))
    };
    let refused = || {
        Err(body_error(
            ErrorCode::CrossSiteRequest,
            "Запрос пришёл не со страницы личного кабинета и поэтому отклонён. Откройте форму на сайте личного кабинета и отправьте её оттуда.",
        ))
    };
    if header_str(request, header::HeaderName::from_static("sec-fetch-site")).eq_ignore_ascii_case("cross-site") {
        return refused();
    }
    let origin = header_str(request, header::ORIGIN);
    if !origin.is_empty() {
        return if own(origin) { Ok(()) } else { refused() };
    }
    let referer = header_str(request, header::REFERER);
    if !referer.is_empty() {
        return if own(referer) { Ok(()) } else { refused() };
    }
    match Face::of(request) {
        Face::Json => Ok(()),
        Face::Html => refused(),
    }
}

/// The face a request is answered in, or, for a post from another site,
/// its refusal. Every HTTP handler starts here.
#[expect(clippy::result_large_err, reason = "the refusal is the answer itself, built once per request")]
pub fn admit(config: &Config, request: &Request) -> Result<Face, Response<Body>> {
    let face = Face::of(request);
    if request.method() == lambda_http::http::Method::POST {
        refuse_cross_site(config, request).map_err(|refused| errors(face, &refused))?;
    }
    Ok(face)
}

/// The origin the request was sent to: `proto://host` (from the `Host`
/// header: only for comparing with what the browser sent, never for links).
fn request_origin(request: &Request) -> String {
    let host = header_str(request, header::HOST);
    let proto = request.headers().get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("https");
    let proto = if proto == "http" { "http" } else { "https" };
    format!("{proto}://{host}")
}

/// Where links in letters should point: `PUBLIC_BASE_URL`, or else the
/// domain API Gateway received the request on (`requestContext.domainName`,
/// which the caller cannot choose), never the `Host` header.
pub fn base_url(config: &Config, request: &Request) -> String {
    if let Some(url) = &config.public_base_url {
        return url.trim_end_matches('/').to_owned();
    }
    let domain = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.domain_name.clone(),
        _ => None,
    };
    match domain {
        Some(domain) => {
            let proto = request.headers().get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("https");
            let proto = if proto == "http" { "http" } else { "https" };
            format!("{proto}://{domain}")
        }
        None => {
            tracing::error!("neither PUBLIC_BASE_URL nor the request's domain name: links in letters are relative");
            String::new()
        }
    }
}

/// The value of a cookie sent with the request.
pub fn cookie<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a session: `__Host-`, HttpOnly, Secure, SameSite=Lax.
pub fn session_cookie(token: &str, max_age_seconds: i64) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age_seconds}; HttpOnly; Secure; SameSite=Lax")
}

/// Name of the cookie that lets the registering browser see the status page.
pub const REGISTRATION_COOKIE: &str = "__Host-registration";

/// `Set-Cookie` for the registration status page (`__Host-` needs `Path=/`).
pub fn registration_cookie(token: &str, max_age_seconds: u64) -> String {
    format!("{REGISTRATION_COOKIE}={token}; Path=/; Max-Age={max_age_seconds}; HttpOnly; Secure; SameSite=Lax")
}

/// `Set-Cookie` for the device cookie: long-lived, HttpOnly, Secure.
pub fn device_cookie(token: &str, max_age_seconds: u64) -> String {
    format!("{DEVICE_COOKIE}={token}; Path=/; Max-Age={max_age_seconds}; HttpOnly; Secure; SameSite=Lax")
}

pub fn expired_session_cookie() -> String {
    session_cookie("", 0)
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn build(status_code: u16, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status(status_code);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Links (with tokens) never leak to other sites; "no-referrer" would also
    // make browsers send `Origin: null` with our own form posts.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    if content_type.starts_with("text/html") {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

pub fn json(status_code: u16, value: &impl Serialize) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(body) => build(status_code, "application/json", body),
        Err(e) => internal_error(Face::Json, &Unexpected::new("encoding a JSON answer", e)),
    }
}

pub fn html(status_code: u16, page: &impl Template) -> Response<Body> {
    match page.render() {
        Ok(body) => build(status_code, "text/html; charset=utf-8", body),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            build(500, "text/plain; charset=utf-8", "Внутренняя ошибка. Попробуйте ещё раз через минуту.".into())
        }
    }
}

/// A static asset, cacheable for a day.
pub fn asset(content_type: &'static str, body: &'static str) -> Response<Body> {
    let mut response = build(200, content_type, body.to_owned());
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    response
}

/// The 404 page (or JSON).
pub fn not_found(face: Face) -> Response<Body> {
    let body = body_error(ErrorCode::NotFound, "Такой страницы нет. Проверьте адрес или начните с главной страницы.");
    match face {
        Face::Json => json(404, &body),
        Face::Html => html(
            404,
            &MessagePage::error(
                "Страница не найдена",
                &body.errors.iter().map(|e| e.message.clone()).collect::<String>(),
                "/",
                "На главную",
            ),
        ),
    }
}

/// 429 with `Retry-After` and a Russian message saying when to try again.
pub fn rate_limited(face: Face, retry_after_seconds: u64) -> Response<Body> {
    let wait = crate::numerals::wait(retry_after_seconds);
    let message = format!("Слишком много попыток подряд. Попробуйте снова через {wait}.");
    with_retry_after(errors(face, &body_error(ErrorCode::RateLimited, &message)), retry_after_seconds)
}

/// Adds `Retry-After` to a refusal.
pub fn with_retry_after(mut response: Response<Body>, retry_after_seconds: u64) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(&retry_after_seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// 303 See Other: after a form post, the browser GETs `location`.
pub fn redirect(location: &str) -> Response<Body> {
    let mut response = build(303, "text/plain; charset=utf-8", String::new());
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

pub fn with_cookie(mut response: Response<Body>, cookie: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// A refusal in the face asked for: its JSON, or `page` (made only for the
/// HTML face) with the same status.
pub fn refuse<P: Template>(face: Face, body: &ErrorBody, page: impl FnOnce() -> P) -> Response<Body> {
    let status = messages::status(body);
    match face {
        Face::Json => json(status, body),
        Face::Html => html(status, &page()),
    }
}

/// An error answer in either face; the HTML face uses a plain message page
/// when the caller has no form to show the errors on.
pub fn errors(face: Face, body: &ErrorBody) -> Response<Body> {
    match face {
        Face::Json => json(messages::status(body), body),
        Face::Html => {
            let text = body.errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join(" ");
            html(messages::status(body), &MessagePage::error("Не получилось", &text, "/", "На главную"))
        }
    }
}

/// Logs a failure with AWS's error code and request id, when it has them.
pub fn log_failure(error: &Unexpected) {
    tracing::error!(
        error = %error,
        aws_code = error.aws.code.as_deref(),
        aws_request_id = error.aws.request_id.as_deref(),
        transient = error.is_transient(),
        "request failed"
    );
}

/// How long a resident is asked to wait after AWS throttled or failed.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 30;

/// The answer when AWS throttled, failed or timed out: 503 with
/// `Retry-After`; nothing is said about what was saved (the caller does not
/// know).
pub fn unavailable_body() -> ErrorBody {
    let wait = crate::numerals::wait(UNAVAILABLE_RETRY_AFTER_SECONDS);
    body_error(
        ErrorCode::Unavailable,
        &format!("Сервис сейчас перегружен или временно недоступен. Попробуйте ещё раз через {wait}."),
    )
}

pub fn unavailable(face: Face) -> Response<Body> {
    let body = unavailable_body();
    let response = match face {
        Face::Json => json(503, &body),
        Face::Html => html(
            503,
            &MessagePage::error(
                "Сервис временно недоступен",
                &body.errors.iter().map(|e| e.message.clone()).collect::<String>(),
                "/",
                "На главную",
            ),
        ),
    };
    with_retry_after(response, UNAVAILABLE_RETRY_AFTER_SECONDS)
}

/// Logs the cause (with AWS's error code and request id, so throttling can
/// be told from an outage) and answers without details: 503 with
/// `Retry-After` when trying again soon may work, else 500.
pub fn internal_error(face: Face, error: &Unexpected) -> Response<Body> {
    log_failure(error);
    if error.is_transient() {
        return unavailable(face);
    }
    let message = "Внутренняя ошибка сервиса. Попробуйте ещё раз через минуту; если ошибка повторится, сообщите в офис управляющей компании.";
    match face {
        Face::Json => build(
            500,
            "application/json",
            serde_json::json!({"errors": [{"code": "internal", "message": message}]}).to_string(),
        ),
        Face::Html => html(500, &MessagePage::error("Что-то пошло не так", message, "/", "На главную")),
    }
}

/// 405 for a method a path is not served with (the router adds `Allow`).
pub fn method_not_allowed(face: Face) -> Response<Body> {
    errors(face, &body_error(ErrorCode::MethodNotAllowed, "Такого действия по этому адресу нет."))
}

/// The log format of every function: one JSON object per line (CloudWatch
/// reads them), filtered by `directives` (e.g. `info`), written to `writer`.
/// Nothing logged names a resident: addresses are masked where they are
/// needed at all, and passwords, tokens, names and phones never are logged.
/// Lines with a `metric` field are also CloudWatch metrics (`metrics`).
pub fn json_logs<W>(writer: W, directives: &str) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let format = tracing_subscriber::fmt::format().json().with_current_span(false).without_time();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(directives))
        .event_format(crate::metrics::Emf::new(format, crate::metrics::namespace()))
        .with_writer(writer)
        .finish()
}

/// Starts the JSON logs on stdout; `RUST_LOG` sets the level (info).
pub fn init_tracing() {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let _ = tracing::subscriber::set_global_default(json_logs(std::io::stdout, &directives));
}

/// The whole `main` of an HTTP function: logs, adapters built once, then the
/// Lambda runtime feeding the function's router one request at a time, each
/// within the time its deadline leaves.
pub async fn run_http(routes: fn() -> routes::Routes) -> Result<(), lambda_http::Error> {
    init_tracing();
    let services = std::sync::Arc::new(crate::Services::from_env().await?);
    serve(routes().into_function_router(services)).await
}

/// As [`run_http`] for a function that calls no AWS service: its state is
/// the configuration alone, so start-up loads no AWS configuration and
/// builds no client.
pub async fn run_http_without_aws(
    routes: fn() -> routes::Routes<std::sync::Arc<Config>>,
) -> Result<(), lambda_http::Error> {
    init_tracing();
    let config = std::sync::Arc::new(Config::from_env()?);
    serve(routes().into_function_router(config)).await
}

/// The Lambda runtime feeding `router`.
async fn serve(router: axum::Router) -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_http::service_fn(move |request: Request| {
        let router = router.clone();
        async move {
            let budget = request.lambda_context_ref().map_or(DEFAULT_BUDGET, |context| budget_until(context.deadline));
            let face = Face::of(&request);
            Ok::<_, std::convert::Infallible>(answer_within(budget, face, routes::dispatch(&router, request)).await)
        }
    }))
    .await
}

/// How long a request may take when the runtime gives no deadline.
pub const DEFAULT_BUDGET: std::time::Duration = std::time::Duration::from_secs(12);

/// The time left before a Lambda deadline (Unix milliseconds), less a
/// margin to answer in: the resident gets our 503, not API Gateway's error.
pub fn budget_until(deadline_ms: u64) -> std::time::Duration {
    let now_ms = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms).saturating_sub(1_500))
}

/// The handler's answer, or a 503 with `Retry-After` when it takes longer
/// than `budget` (an AWS call hanging past its timeouts, many slow calls).
pub async fn answer_within(
    budget: std::time::Duration,
    face: Face,
    answer: impl std::future::Future<Output = Response<Body>>,
) -> Response<Body> {
    match tokio::time::timeout(budget, answer).await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(budget_ms = u64::try_from(budget.as_millis()).unwrap_or(u64::MAX), "request out of time");
            unavailable(face)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{NewRegistration, RegistrationForm};
    use crate::text::WHITESPACE_CONTROLS;
    use proptest::prelude::*;

    fn post(content_type: &str, body: String) -> Request {
        lambda_http::http::Request::builder()
            .method("POST")
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap()
    }

    fn json_post(fields: &[(&str, &str)]) -> Request {
        let object: serde_json::Map<String, serde_json::Value> =
            fields.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect();
        post("application/json", serde_json::Value::Object(object).to_string())
    }

    fn form_post(fields: &[(&str, &str)]) -> Request {
        post("application/x-www-form-urlencoded", serde_urlencoded::to_string(fields).unwrap())
    }

    const PASSWORD: &str = "синий\tтрамвай";

    fn fields<'a>(account: &'a str, full_name: &'a str, phone: &'a str, email: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("account", account),
            ("full_name", full_name),
            ("phone", phone),
            ("email", email),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("consent", "true"),
        ]
    }

    /// The parts of a registration, as strings, read through `read_body`.
    fn read(request: &Request) -> Result<[String; 5], String> {
        let form: RegistrationForm = read_body(request).map_err(|e| format!("{:?}", e.errors))?;
        let r = NewRegistration::parse(&form).map_err(|e| format!("{e:?}"))?;
        Ok([
            r.account.as_str().to_owned(),
            r.full_name.as_str().to_owned(),
            r.phone.as_str().to_owned(),
            r.email.as_str().to_owned(),
            r.password.expose().to_owned(),
        ])
    }

    /// `value` with a run of `runs` inserted at every place where a space
    /// may go without changing it: anywhere when `anywhere`, else at the
    /// ends and next to the spaces already there.
    fn spread(value: &str, anywhere: bool, runs: &[String]) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut next = runs.iter().cycle();
        for i in 0..=chars.len() {
            let before = i.checked_sub(1).and_then(|j| chars.get(j));
            let after = chars.get(i);
            let at_edge = before.is_none() || after.is_none();
            if anywhere || at_edge || before == Some(&' ') || after == Some(&' ') {
                out.push_str(next.next().map_or("", String::as_str));
            }
            if let Some(c) = after {
                out.push(*c);
            }
        }
        out
    }

    fn whitespace_runs() -> impl Strategy<Value = Vec<String>> {
        let mut alphabet = WHITESPACE_CONTROLS.to_vec();
        alphabet.push(' ');
        prop::collection::vec(
            prop::collection::vec(prop::sample::select(alphabet), 0..4).prop_map(|c| c.into_iter().collect::<String>()),
            1..9,
        )
    }

    #[test]
    fn the_issues_names_pasted_with_tabs_and_line_breaks_are_read_in_both_faces() {
        for name in ["Белова\tНадежда\tИвановна", "Зайцев Роман Олегович\n", "Белова\r\nНадежда\u{2028}Ивановна"]
        {
            let fields = fields("100200300", name, "+7 916 123-45-67", "ivanov@mail.ru");
            for request in [json_post(&fields), form_post(&fields)] {
                let parts = read(&request).unwrap();
                assert!(parts[1] == "Белова Надежда Ивановна" || parts[1] == "Зайцев Роман Олегович", "{parts:?}");
                assert_eq!(parts[4], PASSWORD, "the password keeps its tab");
            }
        }
    }

    #[test]
    fn other_control_characters_are_refused_with_the_field_named() {
        for c in ['\u{0}', '\u{1B}', '\u{7F}', '\u{85}'] {
            let name = format!("Белова{c}Надежда Ивановна");
            let fields = fields("100200300", &name, "+7 916 123-45-67", "ivanov@mail.ru");
            for request in [json_post(&fields), form_post(&fields)] {
                let error = read_body::<RegistrationForm>(&request).unwrap_err();
                let first = &error.errors[0];
                assert_eq!(first.field, Some(Field::FullName), "{c:?}");
                assert_eq!(first.code, ErrorCode::Invalid);
                assert!(first.message.starts_with("«ФИО»: значение содержит служебный символ"), "{}", first.message);
            }
        }
    }

    #[test]
    fn the_rate_limit_message_says_the_minutes_as_russian_does() {
        for (seconds, said) in [
            (30, "через 30 секунд."),
            (150, "через 3 минуты."),
            (300, "через 5 минут."),
            (1260, "через 21 минуту."),
            (86_400, "через 24 часа."),
        ] {
            let response = rate_limited(Face::Json, seconds);
            let Body::Text(text) = response.body() else { panic!("a text body") };
            assert!(text.contains(said), "{text}");
        }
    }

    proptest! {
        #[test]
        fn whitespace_controls_inserted_anywhere_parse_to_the_same_value_in_both_faces(
            runs in whitespace_runs(),
            json in any::<bool>(),
        ) {
            let clean = fields("00 1002-00300", "Салтыков-Щедрин Михаил Евграфович", "8 (916) 123-45-67", "Ivanov@Mail.ru");
            let expected = read(&form_post(&clean)).unwrap();
            let account = spread("00 1002-00300", true, &runs);
            let full_name = spread("Салтыков-Щедрин Михаил Евграфович", false, &runs);
            let phone = spread("8 (916) 123-45-67", true, &runs);
            let email = spread("Ivanov@Mail.ru", false, &runs);
            let noisy = fields(&account, &full_name, &phone, &email);
            let request = if json { json_post(&noisy) } else { form_post(&noisy) };
            prop_assert_eq!(read(&request), Ok(expected));
        }
    }
}
