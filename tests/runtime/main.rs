#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed step fails the test

//! The runtime lane (issue 16, item 3): the artifact that is deployed is the
//! one tested. The other tests call the handlers in-process; here each
//! function's binary, built as for deployment, runs under a Lambda Runtime
//! API on loopback (`api.rs`) with only the environment `template.yaml`
//! gives it (resolved against the resources created on moto), and answers
//! the API Gateway HTTP API (payload 2.0), SQS and S3 events recorded in
//! `tests/data/events/` for every route and event source of the template.

mod api;
mod function;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::Engine;
use local_stack::{Resources, Template, repo_root};
use serde_json::{Value, json};

use function::Function;

fn events_dir() -> PathBuf {
    repo_root().join("tests/data/events")
}

/// A recorded event, by its path under `tests/data/events/`.
fn recorded(path: &str) -> Value {
    let text = std::fs::read_to_string(events_dir().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The names (without `.json`) of the recorded events of one kind.
fn recorded_names(kind: &str) -> BTreeSet<String> {
    std::fs::read_dir(events_dir().join(kind))
        .unwrap_or_else(|e| panic!("tests/data/events/{kind}: {e}"))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
        .collect()
}

fn template() -> Template {
    Template::load(&repo_root().join("template.yaml")).expect("template.yaml parses")
}

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL must point at moto's server: run the tests with infra/test.sh")
}

/// What API Gateway makes of a function's response (payload 2.0).
#[derive(Debug)]
struct Answer {
    status: u64,
    headers: serde_json::Map<String, Value>,
    /// `Set-Cookie` values, which payload 2.0 carries apart.
    cookies: Vec<String>,
    body: String,
}

impl Answer {
    fn new(response: &Value) -> Self {
        let status = response["statusCode"].as_u64().unwrap_or_else(|| panic!("no statusCode in {response}"));
        let raw = response["body"].as_str().unwrap_or_default();
        let body = if response["isBase64Encoded"].as_bool().unwrap_or(false) {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(raw).unwrap()).unwrap()
        } else {
            raw.to_owned()
        };
        let cookies = response["cookies"].as_array().into_iter().flatten().map(|c| c.as_str().unwrap().to_owned());
        Self {
            status,
            headers: response["headers"].as_object().cloned().unwrap_or_default(),
            cookies: cookies.collect(),
            body,
        }
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(Value::as_str).unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// `name=value` of a cookie the answer sets.
    fn cookie(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.cookies.iter().find(|c| c.starts_with(&prefix)).map(|c| c.split(';').next().unwrap().to_owned())
    }
}

/// The resources of template.yaml on moto under a fresh prefix, and the
/// functions started in it.
struct World {
    resources: Resources,
    endpoint: String,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    functions: HashMap<String, Function>,
}

impl World {
    /// `parameters` as `sam deploy --parameter-overrides` would set them.
    async fn new(parameters: &[(&str, &str)]) -> Self {
        let endpoint = endpoint();
        let prefix = format!("rt{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut resources = local_stack::provision(&endpoint, &prefix).await.expect("the template's resources on moto");
        for (name, value) in parameters {
            assert!(resources.template.parameters.contains_key(*name), "no parameter {name}");
            resources.template.parameters.insert((*name).to_owned(), (*value).to_owned());
        }
        let aws = local_stack::local_aws(&endpoint).await;
        Self {
            resources,
            endpoint,
            s3: aws_sdk_s3::Client::new(&aws),
            sqs: aws_sdk_sqs::Client::new(&aws),
            functions: HashMap::new(),
        }
    }

    fn name(&self, logical_id: &str) -> String {
        self.resources.names().get(logical_id).unwrap_or_else(|| panic!("no {logical_id}")).clone()
    }

    /// The function deployed as `binary`, started on first use: it must
    /// start from exactly its template environment.
    async fn function(&mut self, binary: &str) -> &Function {
        if !self.functions.contains_key(binary) {
            let declared = self
                .resources
                .template
                .functions
                .iter()
                .find(|f| f.binary == binary)
                .unwrap_or_else(|| panic!("no function {binary} in template.yaml"))
                .clone();
            let environment = self.resources.function_environment(binary).unwrap();
            let function = Function::start(&declared, &environment, &self.endpoint)
                .await
                .unwrap_or_else(|failure| panic!("{binary} does not start from its template environment: {failure}"));
            self.functions.insert(binary.to_owned(), function);
        }
        &self.functions[binary]
    }

    /// Which function API Gateway sends the event to: its route's, by
    /// `routeKey`.
    fn route(&self, event: &Value) -> String {
        let key = event["routeKey"].as_str().expect("a routeKey");
        let routes = &self.resources.template.routes;
        routes
            .iter()
            .find(|r| key == format!("{} {}", r.method, r.path) || key == r.path)
            .unwrap_or_else(|| panic!("no route {key} in template.yaml"))
            .binary
            .clone()
    }

    async fn http(&mut self, event: &Value) -> Answer {
        let binary = self.route(event);
        let response = self.function(&binary).await.invoke(event).await.unwrap_or_else(|failure| panic!("{failure}"));
        Answer::new(&response)
    }

    async fn consume(&mut self, binary: &str, event: &Value) -> Value {
        self.function(binary).await.invoke(event).await.unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// An S3 event (or an invocation record holding one) pointed at this
    /// world's billing bucket.
    fn in_billing_bucket(&self, mut event: Value) -> Value {
        let bucket = self.name("BillingBucket");
        for record in event["Records"].as_array_mut().unwrap() {
            record["s3"]["bucket"]["name"] = json!(bucket);
            record["s3"]["bucket"]["arn"] = json!(format!("arn:aws:s3:::{bucket}"));
        }
        event
    }

    /// An SQS event as if it came from this world's `queue` (the ARN only:
    /// the consumers read the bodies).
    fn on_queue(&self, mut event: Value, queue: &str) -> Value {
        let arn = self.resources.queue_arn(queue).unwrap_or_else(|| panic!("no queue {queue}")).to_owned();
        for record in event["Records"].as_array_mut().unwrap() {
            record["eventSourceARN"] = json!(arn);
        }
        event
    }

    /// The queue (logical id) a consumer is subscribed to.
    fn queue_of(&self, binary: &str) -> String {
        let subscriptions = &self.resources.template.subscriptions;
        subscriptions
            .iter()
            .find(|s| s.binary == binary)
            .unwrap_or_else(|| panic!("{binary} consumes no queue"))
            .queue
            .clone()
    }

    /// Uploads the sample billing export under the key of the recorded S3
    /// event and runs the import on that event.
    async fn import_sample_billing(&mut self) -> Value {
        let event = self.in_billing_bucket(recorded("s3/import-accounts.json"));
        let key = cabinet::files::object_key(event["Records"][0]["s3"]["object"]["key"].as_str().unwrap()).unwrap();
        let body = std::fs::read(repo_root().join("infra/sample-billing.csv")).unwrap();
        self.s3.put_object().bucket(self.name("BillingBucket")).key(&key).body(body.into()).send().await.unwrap();
        let response = self.consume("import-accounts", &event).await;
        let report = self.billing_object(&cabinet::usecases::import::report_keys(&key).summary).await;
        json!({"response": response, "report": report})
    }

    /// The string attributes of every item of a table.
    async fn scan(&self, logical_id: &str) -> Vec<HashMap<String, Value>> {
        let dynamodb = aws_sdk_dynamodb::Client::new(&local_stack::local_aws(&self.endpoint).await);
        let output = dynamodb.scan().table_name(self.name(logical_id)).send().await.unwrap();
        let text = |(name, value): (&String, &aws_sdk_dynamodb::types::AttributeValue)| {
            Some((name.clone(), json!(value.as_s().ok()?)))
        };
        output.items().iter().map(|item| item.iter().filter_map(text).collect()).collect()
    }

    async fn billing_object(&self, key: &str) -> Value {
        let object = self.s3.get_object().bucket(self.name("BillingBucket")).key(key).send().await;
        let object = object.unwrap_or_else(|e| panic!("{key}: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
        serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap()
    }
}

/// What each recorded HTTP event must get, in the order they are sent
/// (one world, so a registration precedes what depends on it): status,
/// content type, and for JSON the error `code` or the `status` field.
const HTTP_CASES: &[(&str, u64, &str, Option<&str>)] = &[
    ("register-form", 200, "text/html", None),
    ("register-json", 201, "application/json", Some("awaiting_email_confirmation")),
    ("register-form-post", 422, "text/html", None),
    ("register-status", 404, "text/html", None),
    ("email-json", 401, "application/json", Some("invalid_credentials")),
    ("confirm-link", 400, "text/html", None),
    ("confirm-resend-json", 202, "application/json", None),
    ("home", 303, "text/plain", None),
    ("login-form", 200, "text/html", None),
    ("login-json", 401, "application/json", Some("invalid_credentials")),
    ("logout-form-post", 303, "text/plain", None),
    ("password-forgot-form", 200, "text/html", None),
    ("password-forgot-json", 202, "application/json", None),
    ("password-reset-link", 400, "text/html", None),
    ("password-reset-json", 400, "application/json", Some("invalid_token")),
    ("account-page", 303, "text/plain", None),
    ("account-email-json", 401, "application/json", Some("not_authenticated")),
    ("account-add-json", 401, "application/json", Some("not_authenticated")),
    ("account-unlink-json", 401, "application/json", Some("not_authenticated")),
    ("account-email-confirm-link", 400, "text/html", None),
    ("account-email-cancel-link", 400, "text/html", None),
    ("help", 200, "text/html", None),
    ("privacy", 200, "text/html", None),
    ("script", 200, "text/javascript", None),
    ("icon", 200, "image/svg+xml", None),
    ("unknown-path", 404, "text/html", None),
];

#[test]
fn the_recorded_events_cover_every_route_and_event_source_of_the_template() {
    let template = template();
    let mut covered = BTreeSet::new();
    for name in recorded_names("http") {
        let event = recorded(&format!("http/{name}.json"));
        let key = event["routeKey"].as_str().unwrap().to_owned();
        let context = &event["requestContext"];
        assert_eq!(event["version"], "2.0", "{name}: payload format 2.0");
        assert_eq!(context["routeKey"], key, "{name}");
        assert_eq!(context["http"]["path"], event["rawPath"], "{name}");
        let route = template.routes.iter().find(|r| key == format!("{} {}", r.method, r.path) || key == r.path);
        let route = route.unwrap_or_else(|| panic!("{name}: {key} is no route of template.yaml"));
        if route.path != local_stack::template::DEFAULT_ROUTE {
            assert_eq!(
                (context["http"]["method"].as_str(), event["rawPath"].as_str()),
                (Some(&*route.method), Some(&*route.path)),
                "{name}"
            );
        }
        // What browsers and clients send comes from where API Gateway puts it.
        assert!(event["headers"].get("cookie").is_none(), "{name}: payload 2.0 carries cookies in `cookies`");
        assert!(context["http"]["sourceIp"].is_string(), "{name}");
        covered.insert(key);
    }
    let routes: BTreeSet<String> = template
        .routes
        .iter()
        .map(|r| {
            if r.path == local_stack::template::DEFAULT_ROUTE {
                r.path.clone()
            } else {
                format!("{} {}", r.method, r.path)
            }
        })
        .collect();
    let missing: Vec<_> = routes.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "routes of template.yaml without a recorded event in tests/data/events/http: {missing:?}"
    );
    // Each recorded HTTP event has what it must get, and nothing else is listed.
    let listed: BTreeSet<String> = HTTP_CASES.iter().map(|(name, ..)| (*name).to_owned()).collect();
    assert_eq!(listed, recorded_names("http"), "HTTP_CASES and tests/data/events/http");

    let consumers: BTreeSet<String> = template.subscriptions.iter().map(|s| s.binary.clone()).collect();
    assert_eq!(recorded_names("sqs"), consumers, "one recorded SQS event per consumer of template.yaml");
    let triggered: BTreeSet<String> = template.s3_triggers.iter().map(|t| t.binary.clone()).collect();
    assert_eq!(recorded_names("s3"), triggered, "one recorded S3 event per S3-triggered function of template.yaml");
    let every: BTreeSet<String> = template.functions.iter().map(|f| f.binary.clone()).collect();
    let fed: BTreeSet<String> =
        template.routes.iter().map(|r| r.binary.clone()).chain(consumers).chain(triggered).collect();
    assert_eq!(fed, every, "every function of template.yaml gets a recorded event");
}

#[tokio::test]
async fn every_function_starts_from_its_template_environment_and_answers_its_recorded_events() {
    function::binaries();
    let started = Instant::now();
    let mut world = World::new(&[]).await;

    // The billing team's upload, as S3 invokes the import.
    let imported = world.import_sample_billing().await;
    assert_eq!(imported["response"], "1 file(s) handled", "{imported}");
    assert_eq!(
        (&imported["report"]["status"], &imported["report"]["loaded"]),
        (&json!("loaded"), &json!(5)),
        "{imported}"
    );

    // Every mismatch is listed, not just the first.
    let mut wrong = Vec::new();
    let mut answers = BTreeMap::new();
    for (name, status, content_type, code) in HTTP_CASES {
        let answer = world.http(&recorded(&format!("http/{name}.json"))).await;
        let body: String = answer.body.chars().take(400).collect();
        let summary = format!("{name}: {} {} {body}", answer.status, answer.header("content-type"));
        let mut problems = Vec::new();
        if answer.status != *status {
            problems.push(format!("status, not {status}"));
        }
        if !answer.header("content-type").starts_with(content_type) {
            problems.push(format!("content type, not {content_type}"));
        }
        if answer.header("content-type").starts_with("application/json") {
            let json = answer.json();
            match code {
                Some(code) if answer.status >= 400 && json["errors"][0]["code"] != *code => {
                    problems.push(format!("error code, not {code}"));
                }
                Some(code) if answer.status < 400 && json["status"] != *code => {
                    problems.push(format!("status field, not {code}"))
                }
                _ => {}
            }
            // Refusals are explained in Russian.
            if let Some(message) = json["errors"][0]["message"].as_str() {
                if !message.chars().any(|c| matches!(c, 'а'..='я' | 'А'..='Я')) {
                    problems.push("a message not in Russian".to_owned());
                }
            }
        }
        if answer.header("content-type").starts_with("text/html")
            && !(answer.body.contains("<html lang=\"ru\"")
                && answer.header("content-security-policy").contains("default-src 'self'"))
        {
            problems.push("not a page of the cabinet".to_owned());
        }
        if !problems.is_empty() {
            wrong.push(format!("{summary}\n    wrong: {}", problems.join(", ")));
        }
        answers.insert(*name, answer);
    }
    assert!(wrong.is_empty(), "answers to recorded events:\n{}", wrong.join("\n"));
    // A registration sets the status page's cookie, in payload 2.0's `cookies`.
    let registered = &answers["register-json"];
    assert!(registered.cookie("__Host-registration").is_some(), "{registered:?}");
    // A logout ends the session cookie.
    assert!(
        answers["logout-form-post"].cookies.iter().any(|c| c.starts_with("__Host-session=;")),
        "{:?}",
        answers["logout-form-post"]
    );
    assert_eq!(answers["home"].header("location"), "/login");

    // The SQS consumers: each message handled or reported on its own.
    let identify = world.on_queue(recorded("sqs/identify.json"), &world.queue_of("identify"));
    let response = world.consume("identify", &identify).await;
    // The second message is not a job: only it is reported, for SQS to retry.
    assert_eq!(response, json!({"batchItemFailures": [{"itemIdentifier": identify["Records"][1]["messageId"]}]}));

    let mail = world.on_queue(recorded("sqs/mail-events.json"), &world.queue_of("mail-events"));
    assert_eq!(world.consume("mail-events", &mail).await, json!({"batchItemFailures": []}));

    let mut failures = world.on_queue(recorded("sqs/import-failures.json"), &world.queue_of("import-failures"));
    let body = failures["Records"][0]["body"].as_str().unwrap();
    let mut record: Value = serde_json::from_str(body).unwrap();
    record["requestPayload"] = world.in_billing_bucket(record["requestPayload"].take());
    failures["Records"][0]["body"] = json!(record.to_string());
    assert_eq!(world.consume("import-failures", &failures).await, json!({"batchItemFailures": []}));
    let key =
        cabinet::files::object_key(record["requestPayload"]["Records"][0]["s3"]["object"]["key"].as_str().unwrap())
            .unwrap();
    let report = world.billing_object(&cabinet::usecases::import::report_keys(&key).summary).await;
    assert_eq!(report["status"], "import_failed", "{report}");

    // Every function of the template started and answered.
    let every: BTreeSet<&str> = world.resources.template.functions.iter().map(|f| f.binary.as_str()).collect();
    assert_eq!(world.functions.keys().map(String::as_str).collect::<BTreeSet<_>>(), every);
    eprintln!(
        "{} functions, {} recorded events in {:.1} s",
        every.len(),
        HTTP_CASES.len() + 4,
        started.elapsed().as_secs_f64()
    );
}

/// `event` with its JSON body changed by `change` (and its length).
fn with_json_body(mut event: Value, change: impl FnOnce(&mut Value)) -> Value {
    assert_eq!(event["isBase64Encoded"], false);
    let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    change(&mut body);
    let body = body.to_string();
    event["headers"]["content-length"] = json!(body.len().to_string());
    event["body"] = json!(body);
    event
}

/// `event` with another query string, where API Gateway puts it: raw, and
/// parsed (repeated names joined by commas).
fn with_query(mut event: Value, query: &str) -> Value {
    let mut parameters = serde_json::Map::new();
    for (name, value) in serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap() {
        let joined = match parameters.get(&name).and_then(Value::as_str) {
            Some(earlier) => format!("{earlier},{value}"),
            None => value,
        };
        parameters.insert(name, json!(joined));
    }
    event["rawQueryString"] = json!(query);
    event["queryStringParameters"] = Value::Object(parameters);
    event
}

const PASSWORD: &str = "синий трамвай";

#[tokio::test]
async fn a_resident_registers_confirms_is_identified_and_logs_in_through_the_deployed_functions() {
    function::binaries();
    // No wait before identification (a parameter of the template), so the
    // job confirm-email sends is on the queue at once.
    let mut world = World::new(&[("IdentifyDelaySeconds", "0")]).await;
    world.import_sample_billing().await;
    let email = format!("r{}@example.ru", uuid::Uuid::new_v4().simple());

    let register = with_json_body(recorded("http/register-json.json"), |body| body["email"] = json!(email));
    let registered = world.http(&register).await;
    assert_eq!(registered.status, 201, "{registered:?}");
    let registration = registered.cookie("__Host-registration").expect("the status page's cookie");
    for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(registered.cookies.iter().any(|c| c.starts_with("__Host-registration=") && c.contains(flag)), "{flag}");
    }

    // The browser that registered sees its registration: the cookie comes
    // back in payload 2.0's `cookies`, beside others.
    let mut status = recorded("http/register-status.json");
    status["cookies"] = json!(["_ym_uid=1732541203918273645", registration]);
    let page = world.http(&status).await;
    assert_eq!(page.status, 200, "{}", page.body);

    // The letter's link points where API Gateway received the request
    // (`requestContext.domainName`, PUBLIC_BASE_URL being empty).
    let domain = register["requestContext"]["domainName"].as_str().unwrap();
    let letters = local_stack::sent_letters(&reqwest::Client::new(), &world.endpoint, Some(&email)).await.unwrap();
    let letter = letters.last().expect("a confirmation letter");
    let link = format!("https://{domain}/confirm?token=");
    let start = letter.text.find(&link).unwrap_or_else(|| panic!("{link} in {}", letter.text));
    // The link's query: the token and the account number.
    let query = letter.text[start + link.len()..].split_whitespace().next().unwrap().to_owned();
    assert!(query.ends_with("&account=100200300"), "{query}");
    let confirm = with_query(recorded("http/confirm-link.json"), &format!("token={query}&utm_source=mail"));
    let confirmed = world.http(&confirm).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);

    // identify gets the job confirm-email sent, as the event source mapping
    // delivers it.
    let received = world
        .sqs
        .receive_message()
        .queue_url(world.name("IdentifyQueue"))
        .max_number_of_messages(1)
        .wait_time_seconds(10)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let message = received.messages().first().expect("the identification job on IdentifyQueue");
    let mut jobs = world.on_queue(recorded("sqs/identify.json"), "IdentifyQueue");
    let mut record = jobs["Records"][0].take();
    record["messageId"] = json!(message.message_id());
    record["receiptHandle"] = json!(message.receipt_handle());
    record["body"] = json!(message.body());
    record["md5OfBody"] = json!(message.md5_of_body());
    let attributes = message.attributes().into_iter().flatten().map(|(k, v)| (k.as_str().to_owned(), json!(v)));
    record["attributes"] = Value::Object(attributes.collect());
    jobs["Records"] = json!([record]);
    assert_eq!(world.consume("identify", &jobs).await, json!({"batchItemFailures": []}));

    // Logging in from an app, then the account page in a browser.
    let login = with_json_body(recorded("http/login-json.json"), |body| {
        *body = json!({"login": email, "password": PASSWORD});
    });
    let logged_in = world.http(&login).await;
    assert_eq!(logged_in.status, 200, "{}", logged_in.body);
    let session = logged_in.cookie("__Host-session").expect("a session cookie");
    let mut account = recorded("http/account-page.json");
    account["cookies"] = json!([session]);
    let page = world.http(&account).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("100200300"), "{}", page.body);

    let mut logout = recorded("http/logout-form-post.json");
    logout["cookies"] = json!([session]);
    assert_eq!(world.http(&logout).await.status, 303);
    let after = world.http(&account).await;
    assert_eq!((after.status, after.header("location")), (303, "/login"));

    // The audit log has the caller's address from `requestContext.http.sourceIp`.
    let audit = world.scan("AuditTable").await;
    let ip = register["requestContext"]["http"]["sourceIp"].as_str().unwrap();
    assert!(
        audit.iter().any(|item| item.get("event") == Some(&json!("registered")) && item.get("ip") == Some(&json!(ip))),
        "{audit:?}"
    );
}

/// Symbols of the AWS SDK crates and of aws-config in a built binary.
fn aws_symbols(binary: &Path) -> usize {
    let output = std::process::Command::new("nm").arg("-C").arg(binary).output().expect("nm runs (binutils)");
    assert!(output.status.success(), "nm {}", binary.display());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains("aws_sdk_") || line.contains("aws_config::"))
        .count()
}

/// The pages call no AWS service, so their binary links no SDK and no AWS
/// configuration loader; the login function, which does, is the control.
#[test]
fn the_pages_function_links_no_aws_sdk_and_the_others_do() {
    let binaries = function::binaries();
    assert_eq!(aws_symbols(&binaries.join("pages")), 0, "pages links AWS SDK code");
    assert!(aws_symbols(&binaries.join("login")) > 100, "the control: login links the SDKs it calls");
}
