#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support: a failed step fails the test

//! Test support: each test gets its own local stack (own tables, queue and
//! bucket on the shared moto server) and a plain HTTP client.

use std::time::Duration;

use local_stack::{LocalStack, Options};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub use local_stack::SentLetter;

pub mod fault_proxy;

/// The wait between confirmation and identification in these tests.
pub const TEST_DELAY: Duration = Duration::from_secs(2);

pub struct TestApp {
    pub stack: LocalStack,
    pub client: reqwest::Client,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The `code` of the first error.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or_default().to_owned()
    }

    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("__Host-session="))
            .map(|c| c.split(';').next().unwrap_or_default().to_owned())
    }
}

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL must point at moto's server: run the tests with infra/test.sh")
}

/// A fault proxy in front of the local endpoint (see [`fault_proxy`]).
pub async fn start_fault_proxy() -> fault_proxy::FaultProxy {
    fault_proxy::FaultProxy::start(&endpoint()).await
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Options)) -> TestApp {
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut options = Options::new(endpoint(), prefix);
    options.identify_delay = TEST_DELAY;
    configure(&mut options);
    let stack = local_stack::start(options).await.expect("the local stack starts");
    // Browsers send Origin with every form post; the cabinet refuses posts
    // from other sites (tests of that set their own).
    let mut headers = HeaderMap::new();
    headers.insert("origin", stack.url.parse().expect("an origin header"));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .expect("an HTTP client");
    TestApp { stack, client }
}

/// A sender domain no other test uses, so that a test can make SES refuse
/// its letters (and accept them again) without touching the others: start
/// the app with `mail_from = Some(sender.address())`.
pub struct OwnSender {
    domain: String,
    ses: aws_sdk_sesv2::Client,
}

impl OwnSender {
    pub async fn new() -> Self {
        let domain = format!("s{}.example", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let ses = aws_sdk_sesv2::Client::new(&local_stack::local_aws(&endpoint()).await);
        let sender = Self { domain, ses };
        sender.accepts(true).await;
        sender
    }

    pub fn address(&self) -> String {
        format!("cabinet@{}", self.domain)
    }

    /// Verifies the domain in SES (letters go) or removes it (SES refuses them).
    pub async fn accepts(&self, accepted: bool) {
        if accepted {
            self.ses.create_email_identity().email_identity(&self.domain).send().await.expect("an SES identity");
        } else {
            self.ses
                .delete_email_identity()
                .email_identity(&self.domain)
                .send()
                .await
                .expect("an SES identity removed");
        }
    }
}

/// An address no other test uses.
pub fn unique_email() -> String {
    format!("r{}@example.ru", uuid::Uuid::new_v4().simple())
}

/// A registration of the sample account 100200300 (Иванов Иван Иванович).
pub fn registration(email: &str) -> Value {
    json!({
        "account": "100200300",
        "full_name": "Иванов Иван Иванович",
        "phone": "+7 916 123-45-67",
        "email": email,
        "password": "синий трамвай",
        "password_confirm": "синий трамвай",
        "consent": true
    })
}

pub const PASSWORD: &str = "синий трамвай";

impl TestApp {
    async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        Answer { status, headers, text }
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        let response = self
            .client
            .post(format!("{}{path}", self.stack.url))
            .json(body)
            .send()
            .await
            .expect("the request is answered");
        Self::answer(response).await
    }

    /// A JSON post with a cookie (a session's, usually).
    pub async fn post_json_as(&self, path: &str, body: &Value, cookie: &str) -> Answer {
        let request = self.client.post(format!("{}{path}", self.stack.url)).header("cookie", cookie).json(body);
        Self::answer(request.send().await.expect("the request is answered")).await
    }

    /// A form post with a cookie, as a browser sends it.
    pub async fn post_form_as(&self, path: &str, fields: &[(&str, &str)], cookie: &str) -> Answer {
        let body = serde_urlencoded::to_string(fields).expect("a form body");
        let request = self
            .client
            .post(format!("{}{path}", self.stack.url))
            .header("cookie", cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        Self::answer(request.send().await.expect("the request is answered")).await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let response = self
            .client
            .post(format!("{}{path}", self.stack.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the request is answered");
        Self::answer(response).await
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let body = serde_urlencoded::to_string(fields).expect("form encoding");
        self.post_raw(path, "application/x-www-form-urlencoded", body.into_bytes()).await
    }

    /// POST /register as the HTML form sends it, from a body like
    /// [`registration`]'s (consent `true` is the checked box).
    pub async fn post_registration_form(&self, body: &Value) -> Answer {
        let fields: Vec<(String, String)> = body
            .as_object()
            .expect("an object")
            .iter()
            .filter_map(|(name, value)| match value {
                Value::String(text) => Some((name.clone(), text.clone())),
                Value::Bool(true) => Some((name.clone(), "on".to_owned())),
                _ => None,
            })
            .collect();
        let body = serde_urlencoded::to_string(&fields).expect("form encoding");
        self.post_raw("/register", "application/x-www-form-urlencoded", body.into_bytes()).await
    }

    pub async fn get(&self, path: &str, accept: &str, cookie: Option<&str>) -> Answer {
        let mut request = self.client.get(format!("{}{path}", self.stack.url)).header("accept", accept);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        Self::answer(request.send().await.expect("the request is answered")).await
    }

    pub async fn register(&self, email: &str) -> Answer {
        self.post_json("/register", &registration(email)).await
    }

    pub async fn letters_to(&self, email: &str) -> Vec<SentLetter> {
        self.stack.letters(Some(email)).await.expect("moto lists the sent letters")
    }

    /// The confirmation link of the newest letter to `email`, as a path.
    pub async fn confirmation_path(&self, email: &str) -> String {
        let letters = self.letters_to(email).await;
        let letter = letters.iter().rev().find(|l| l.text.contains("/confirm?token=")).expect("a confirmation letter");
        let start = letter.text.find("/confirm?token=").expect("a link");
        letter.text[start..].split_whitespace().next().expect("a link").to_owned()
    }

    /// The confirmation links of every letter to `email`, oldest first, as paths.
    pub async fn confirmation_paths(&self, email: &str) -> Vec<String> {
        let letters = self.letters_to(email).await;
        letters
            .iter()
            .filter_map(|l| Some(l.text[l.text.find("/confirm?token=")?..].split_whitespace().next()?.to_owned()))
            .collect()
    }

    pub async fn login(&self, login: &str, password: &str) -> Answer {
        self.post_json("/login", &json!({"login": login, "password": password})).await
    }

    /// Logs in, retrying while identification is pending (up to 30 s).
    pub async fn login_when_ready(&self, login: &str, password: &str) -> Answer {
        for _ in 0..60 {
            let answer = self.login(login, password).await;
            if answer.status != StatusCode::FORBIDDEN || answer.code() != "identification_pending" {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("identification did not finish in 30 s");
    }

    /// Registers the sample resident and confirms the address.
    pub async fn register_and_confirm(&self, email: &str) -> Answer {
        let registered = self.register(email).await;
        assert_eq!(registered.status, StatusCode::CREATED, "{}", registered.text);
        let path = self.confirmation_path(email).await;
        self.get(&path, "application/json", None).await
    }
}

impl TestApp {
    /// Registers, confirms and waits for identification; returns the
    /// session cookie of a first login.
    pub async fn active_resident(&self, email: &str) -> String {
        self.register_and_confirm(email).await;
        let answer = self.login_when_ready(email, PASSWORD).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.session_cookie().expect("a session cookie")
    }

    /// The newest link to `path_prefix` (e.g. "/password/reset?token=") in
    /// a letter to `email`, as a path.
    pub async fn link_in_letter(&self, email: &str, path_prefix: &str) -> String {
        let letters = self.letters_to(email).await;
        let letter = letters.iter().rev().find(|l| l.text.contains(path_prefix)).expect("a letter with the link");
        let start = letter.text.find(path_prefix).expect("a link");
        letter.text[start..].split_whitespace().next().expect("a link").to_owned()
    }

    /// The token of the newest reset link sent to `email`.
    pub async fn reset_token(&self, email: &str) -> String {
        let path = self.link_in_letter(email, "/password/reset?token=").await;
        path.split_once("token=").expect("a token").1.to_owned()
    }

    /// A POST with extra headers (and without the default Origin when
    /// `origin` is given as "").
    pub async fn post_with(&self, path: &str, content_type: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Answer {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client");
        let mut request =
            client.post(format!("{}{path}", self.stack.url)).header("content-type", content_type).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::answer(request.send().await.expect("the request is answered")).await
    }
}

/// A minimal XLSX workbook (first sheet = `rows`), as Excel or 1C writes it:
/// shared strings for text, numbers as numbers.
pub fn xlsx(rows: &[Vec<&str>]) -> Vec<u8> {
    use std::io::Write;
    fn column(i: usize) -> String {
        let mut name = String::new();
        let mut n = i + 1;
        while n > 0 {
            let r = (n - 1) % 26;
            name.insert(0, char::from(b'A' + r as u8));
            n = (n - 1) / 26;
        }
        name
    }
    fn escape(s: &str) -> String {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
    }
    let mut strings: Vec<String> = Vec::new();
    let mut sheet = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for (r, row) in rows.iter().enumerate() {
        sheet.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, value) in row.iter().enumerate() {
            let reference = format!("{}{}", column(c), r + 1);
            if !value.is_empty() && value.parse::<f64>().is_ok() {
                sheet.push_str(&format!(r#"<c r="{reference}"><v>{value}</v></c>"#));
            } else if !value.is_empty() {
                strings.push(escape(value));
                sheet.push_str(&format!(r#"<c r="{reference}" t="s"><v>{}</v></c>"#, strings.len() - 1));
            }
        }
        sheet.push_str("</row>");
    }
    sheet.push_str("</sheetData></worksheet>");
    let shared = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="{0}" uniqueCount="{0}">{1}</sst>"#,
        strings.len(),
        strings.iter().map(|s| format!("<si><t>{s}</t></si>")).collect::<String>()
    );
    let files = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>"#.to_owned(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#.to_owned(),
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Лицевые счета" sheetId="1" r:id="rId1"/></sheets></workbook>"#.to_owned(),
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>"#.to_owned(),
        ),
        ("xl/worksheets/sheet1.xml", sheet),
        ("xl/sharedStrings.xml", shared),
    ];
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut archive = zip::ZipWriter::new(&mut buffer);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, content) in files {
        archive.start_file(name, options).expect("a zip entry");
        archive.write_all(content.as_bytes()).expect("zip data");
    }
    archive.finish().expect("a zip file");
    buffer.into_inner()
}

/// The JSON log lines the functions write in this test binary, captured
/// from the first call on (the log subscriber is one for the whole
/// process).
pub fn captured_logs() -> &'static CapturedLogs {
    static LOGS: std::sync::OnceLock<CapturedLogs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = CapturedLogs::default();
        let writer = captured.clone();
        tracing::subscriber::set_global_default(cabinet::web::json_logs(move || writer.clone(), "info"))
            .expect("the only log subscriber of this test binary");
        captured
    })
}

#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("the log buffer").clone()).expect("UTF-8 logs")
    }

    /// Every JSON line written so far.
    pub fn lines(&self) -> Vec<Value> {
        self.text().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("the log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `Set-Cookie` value (name=value) of the cookie whose name ends with `name`.
pub fn cookie_named(answer: &Answer, name: &str) -> Option<String> {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
        .find(|c| c.split_once('=').is_some_and(|(n, v)| n.ends_with(name) && !v.is_empty()))
}

/// The events of the audit log, in no order.
pub async fn audit_events(app: &TestApp) -> Vec<String> {
    let items = app.stack.table_items("AuditTable").await.unwrap_or_default();
    items.iter().filter_map(|i| i["event"].as_str().map(str::to_owned)).collect()
}
