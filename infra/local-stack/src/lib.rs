//! The whole system on one machine: the resources of template.yaml created on
//! a local AWS endpoint (moto), the same handler functions the Lambdas run
//! served on the same routes, SQS messages delivered to `identify` as the
//! Lambda event source mapping would, and the sent letters shown at
//! `/_local/mail`.

pub mod functions;
mod mailbox;
mod poller;
mod provision;
pub mod recorder;
mod server;
pub mod template;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use cabinet::{Config, Services};

pub use mailbox::{SentLetter, sent_letters};
pub use template::Template;

pub use functions::{CONSUMERS, HTTP_FUNCTIONS};

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    #[error("creating local resources: {0}")]
    Provision(String),
    #[error("configuration from template.yaml: {0}")]
    Config(#[from] cabinet::config::ConfigError),
    #[error("loading the sample billing file: {0}")]
    Seed(String),
    #[error("serving HTTP: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone)]
pub struct Options {
    /// The local AWS endpoint (moto's server), e.g. `http://127.0.0.1:5000`.
    pub endpoint: String,
    /// Prefix of every resource name; a fresh one gives an isolated world.
    pub prefix: String,
    /// 0 picks a free port.
    pub port: u16,
    pub identify_delay: Duration,
    /// The sample billing file to load, if any.
    pub billing_file: Option<PathBuf>,
    /// Sender address instead of the template's (e.g. an unverified one, to
    /// see SES refuse).
    pub mail_from: Option<String>,
    /// Function environment set over the template's, e.g.
    /// `CONFIRMATION_TOKEN_TTL_HOURS`.
    pub environment: HashMap<String, String>,
    /// Where the functions' AWS calls go, if not to `endpoint` (which still
    /// provisions): a proxy that injects faults, or a closed port.
    pub function_endpoint: Option<String>,
    /// Timeouts of the functions' AWS calls. The default is looser than in
    /// AWS ([`cabinet::services::lambda_timeouts`]), since one moto serves
    /// every test at once on two cores.
    pub timeouts: aws_config::timeout::TimeoutConfig,
    /// How long an HTTP request may take before it is answered 503, as in
    /// Lambda, where `web::run_http` gives each request the function's
    /// deadline less a margin; `None`: no limit (the default, since one
    /// moto serves every test at once).
    pub request_budget: Option<Duration>,
}

impl Options {
    pub fn new(endpoint: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            prefix: prefix.into(),
            port: 0,
            identify_delay: Duration::from_secs(30),
            billing_file: Some(repo_root().join("infra/sample-billing.csv")),
            mail_from: None,
            environment: HashMap::new(),
            function_endpoint: None,
            timeouts: aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(20))
                .operation_timeout(Duration::from_secs(60))
                .build(),
            request_budget: None,
        }
    }
}

/// The repository root (template.yaml lives there).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The region of the local endpoint.
pub const LOCAL_REGION: &str = "us-east-1";

/// SDK configuration for the local endpoint, with dummy credentials.
pub async fn local_aws(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(LOCAL_REGION))
        .credentials_provider(Credentials::new("local", "local", None, None, "local-stack"))
        .load()
        .await
}

pub struct LocalStack {
    /// Where the cabinet is served, e.g. `http://127.0.0.1:3000`.
    pub url: String,
    pub services: Arc<Services>,
    /// The AWS calls each function made (see `recorder`).
    pub calls: recorder::Calls,
    pub template: Template,
    /// Physical names by logical id (queues: URL).
    pub names: HashMap<String, String>,
    /// The bucket billing files are uploaded to.
    pub billing_bucket: Option<String>,
    /// Where the bucket's notifications for the import queue up.
    s3_events_queue: Option<String>,
    s3: aws_sdk_s3::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    endpoint: String,
    http: reqwest::Client,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The resources of template.yaml, created on a local endpoint under a
/// prefix of their names, with nothing served or delivered: what a deployed
/// function finds around it.
pub struct Resources {
    pub template: Template,
    physical: provision::Physical,
}

/// Creates the resources of template.yaml on `endpoint` (moto's server),
/// named `<prefix>-<logical id>`.
pub async fn provision(endpoint: &str, prefix: &str) -> Result<Resources, StackError> {
    let template = Template::load(&repo_root().join("template.yaml"))?;
    let physical = provision::provision(&template, &local_aws(endpoint).await, prefix).await?;
    Ok(Resources { template, physical })
}

impl Resources {
    /// Physical names by logical id (for a queue its URL, as `!Ref` gives).
    pub fn names(&self) -> &HashMap<String, String> {
        &self.physical.names
    }

    /// The ARN of a queue, by logical id.
    pub fn queue_arn(&self, logical_id: &str) -> Option<&str> {
        self.physical.queue_arns.get(logical_id).map(String::as_str)
    }

    /// The environment template.yaml gives the function deployed as
    /// `binary`: Globals' variables, then its own, resolved against these
    /// resources and the template's parameters (`template.parameters`, the
    /// defaults unless changed, as `sam deploy --parameter-overrides`
    /// would). A variable that does not resolve is an error, not left out.
    pub fn function_environment(&self, binary: &str) -> Result<HashMap<String, String>, StackError> {
        let function = self
            .template
            .functions
            .iter()
            .find(|f| f.binary == binary)
            .ok_or_else(|| StackError::Provision(format!("no function {binary} in template.yaml")))?;
        self.environment(self.template.environment.iter().chain(&function.environment))
    }

    /// Globals' environment alone, resolved.
    fn global_environment(&self) -> Result<HashMap<String, String>, StackError> {
        self.environment(self.template.environment.iter())
    }

    fn environment<'a>(
        &self,
        variables: impl Iterator<Item = &'a (String, serde_yaml::Value)>,
    ) -> Result<HashMap<String, String>, StackError> {
        let lookup = |name: &str| {
            let stack_name = (name == "AWS::StackName").then_some(&self.physical.stack_name);
            self.template.parameters.get(name).or_else(|| self.physical.names.get(name)).or(stack_name).cloned()
        };
        variables
            .map(|(name, value)| match template::resolve(value, &lookup) {
                Some(resolved) => Ok((name.clone(), resolved)),
                None => Err(StackError::Provision(format!("{name} of template.yaml does not resolve locally"))),
            })
            .collect()
    }
}

pub async fn start(options: Options) -> Result<LocalStack, StackError> {
    let aws = local_aws(&options.endpoint).await;
    let resources = provision(&options.endpoint, &options.prefix).await?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
    let url = format!("http://{}", listener.local_addr()?);

    // What the local stack sets over the template, for every function.
    let local = |mut environment: HashMap<String, String>| {
        environment.insert("IDENTIFY_DELAY_SECONDS".into(), options.identify_delay.as_secs().to_string());
        // What Lambda sets: the region of `local_aws`.
        environment.insert("AWS_REGION".into(), LOCAL_REGION.into());
        environment.insert("PUBLIC_BASE_URL".into(), url.clone());
        if let Some(from) = &options.mail_from {
            environment.insert("MAIL_FROM".into(), from.clone());
        }
        environment.extend(options.environment.clone());
        Config::from_lookup(|name| environment.get(name).cloned())
    };
    let config = local(resources.global_environment()?)?;
    let function_aws = local_aws(options.function_endpoint.as_deref().unwrap_or(&options.endpoint))
        .await
        .into_builder()
        .timeout_config(options.timeouts.clone())
        .build();
    let services = Arc::new(Services::new(config, &aws));
    // Each function gets its own clients, recording the calls it makes, and
    // its own environment.
    let calls = recorder::Calls::default();
    let mut functions: HashMap<String, Arc<Services>> = HashMap::new();
    for binary in functions::binaries() {
        let config = local(resources.function_environment(binary)?)?;
        let recorder = || recorder::Recorder { function: binary.to_owned(), calls: calls.clone() };
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&function_aws).interceptor(recorder()).build(),
        );
        let ses = aws_sdk_sesv2::Client::from_conf(
            aws_sdk_sesv2::config::Builder::from(&function_aws).interceptor(recorder()).build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&function_aws).interceptor(recorder()).build(),
        );
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&function_aws).interceptor(recorder()).build(),
        );
        functions.insert(binary.to_owned(), Arc::new(Services::with_clients(config, dynamodb, ses, sqs, s3)));
    }
    let adapters = |binary: &str| functions.get(binary).cloned().unwrap_or_else(|| services.clone());
    let router = functions::merged_router(adapters);
    let Resources { template, physical } = resources;

    let mut tasks = Vec::new();
    let http = reqwest::Client::new();
    tasks.push(tokio::spawn(server::serve(
        listener,
        server::State {
            router,
            endpoint: options.endpoint.clone(),
            http: http.clone(),
            domain: url.trim_start_matches("http://").to_owned(),
            budget: options.request_budget,
        },
    )));
    let no_consumer = |binary: &str, kind: &str| {
        StackError::Provision(format!(
            "template.yaml feeds {binary} from {kind}, but functions::CONSUMERS has no such consumer"
        ))
    };
    for subscription in &template.subscriptions {
        let Some(functions::Source::Queue(handler)) = functions::consumer(&subscription.binary).map(|c| c.source)
        else {
            return Err(no_consumer(&subscription.binary, "a queue"));
        };
        let queue_url = physical.names.get(&subscription.queue).cloned().unwrap_or_default();
        tasks.push(tokio::spawn(poller::deliver(
            aws_sdk_sqs::Client::new(&aws),
            queue_url,
            subscription.clone(),
            handler,
            adapters(&subscription.binary),
        )));
    }
    for trigger in &template.s3_triggers {
        let Some(functions::Source::Bucket(handler)) = functions::consumer(&trigger.binary).map(|c| c.source) else {
            return Err(no_consumer(&trigger.binary, "a bucket"));
        };
        let Some(queue_url) = physical.s3_trigger_queues.get(&trigger.binary) else { continue };
        let failures_url = trigger.on_failure.as_ref().and_then(|id| physical.names.get(id)).cloned();
        tasks.push(tokio::spawn(poller::deliver_s3(
            aws_sdk_sqs::Client::new(&aws),
            poller::S3Delivery { queue_url: queue_url.clone(), trigger: trigger.clone(), failures_url },
            handler,
            adapters(&trigger.binary),
        )));
    }
    let billing_bucket = template.s3_triggers.first().and_then(|t| physical.names.get(&t.bucket)).cloned();
    let stack = LocalStack {
        url,
        services,
        calls,
        template,
        names: physical.names,
        billing_bucket,
        s3_events_queue: physical.s3_trigger_queues.values().next().cloned(),
        s3: aws_sdk_s3::Client::new(&aws),
        dynamodb: aws_sdk_dynamodb::Client::new(&aws),
        sqs: aws_sdk_sqs::Client::new(&aws),
        endpoint: options.endpoint,
        http,
        tasks,
    };
    // The sample billing data arrives as the billing team's files do: an
    // upload to incoming/ that the import function loads.
    if let Some(file) = &options.billing_file {
        let report = stack.upload_billing_file(file).await?;
        tracing::info!(report = %report, "sample billing data imported");
    }
    Ok(stack)
}

impl LocalStack {
    /// Uploads a billing file to `incoming/` and waits (up to 5 minutes) for
    /// the import's JSON report, which it returns.
    pub async fn upload_billing_file(&self, path: &Path) -> Result<String, StackError> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "billing.csv".into());
        let body = tokio::fs::read(path).await?;
        self.upload_billing_bytes(&name, body).await
    }

    pub async fn upload_billing_bytes(&self, name: &str, body: Vec<u8>) -> Result<String, StackError> {
        let bucket = self.billing_bucket.clone().ok_or_else(|| StackError::Seed("no billing bucket".into()))?;
        let key = format!("{}{name}", cabinet::usecases::import::INCOMING_PREFIX);
        let report_key = cabinet::usecases::import::report_keys(&key).summary;
        // A report left by an earlier upload of the same name is not this one's.
        let _ = self.s3.delete_object().bucket(&bucket).key(&report_key).send().await;
        self.s3
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(body.into())
            .send()
            .await
            .map_err(|e| StackError::Seed(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
        for _ in 0..3000 {
            if let Ok(object) = self.s3.get_object().bucket(&bucket).key(&report_key).send().await {
                let bytes = object.body.collect().await.map_err(|e| StackError::Seed(e.to_string()))?;
                return Ok(String::from_utf8_lossy(&bytes.into_bytes()).into_owned());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(StackError::Seed(format!("no import report for {key} after 5 minutes")))
    }

    /// An object of the billing bucket as text (reports).
    pub async fn billing_object(&self, key: &str) -> Option<Vec<u8>> {
        let bucket = self.billing_bucket.as_deref()?;
        let object = self.s3.get_object().bucket(bucket).key(key).send().await.ok()?;
        object.body.collect().await.ok().map(|b| b.into_bytes().to_vec())
    }

    /// The tags of an object of the billing bucket.
    pub async fn billing_object_tags(&self, key: &str) -> Vec<(String, String)> {
        let Some(bucket) = self.billing_bucket.as_deref() else { return Vec::new() };
        match self.s3.get_object_tagging().bucket(bucket).key(key).send().await {
            Ok(output) => output.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Letters sent so far to `to` (all letters with `None`), oldest first.
    pub async fn letters(&self, to: Option<&str>) -> Result<Vec<SentLetter>, reqwest::Error> {
        mailbox::sent_letters(&self.http, &self.endpoint, to).await
    }

    /// Every item of a table (by logical id in template.yaml) as JSON, for
    /// tests that look at what was stored.
    pub async fn table_items(&self, logical_id: &str) -> Result<Vec<serde_json::Value>, StackError> {
        let table =
            self.names.get(logical_id).ok_or_else(|| StackError::Provision(format!("no table {logical_id}")))?;
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .dynamodb
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StackError::Provision(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()))?;
            for item in output.items.unwrap_or_default() {
                items.push(serde_dynamo::from_item(item).map_err(|e| StackError::Provision(e.to_string()))?);
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Puts an S3 `ObjectCreated` notification for `key` of the billing
    /// bucket on the import's queue, as S3 sends it, whether or not the
    /// object (still) exists: an upload replaced or deleted before the
    /// import ran.
    pub async fn notify_billing_upload(&self, key: &str) -> Result<(), StackError> {
        let bucket = self.billing_bucket.clone().ok_or_else(|| StackError::Seed("no billing bucket".into()))?;
        let url =
            self.s3_events_queue.clone().ok_or_else(|| StackError::Provision("no S3-triggered function".into()))?;
        let event = serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-25T10:00:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "local",
                   "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                   "object": {"key": key, "size": 0, "eTag": "0"}}
        }]});
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(event.to_string())
            .send()
            .await
            .map_err(|e| StackError::Provision(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }

    /// Sends `body` to a queue (by logical id), as its producer would: e.g.
    /// an SES event as SNS delivers it.
    pub async fn send_to_queue(&self, logical_id: &str, body: &str) -> Result<(), StackError> {
        let url = self.names.get(logical_id).ok_or_else(|| StackError::Provision(format!("no queue {logical_id}")))?;
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| StackError::Provision(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
