//! Reads `template.yaml`, the single source of resources and routes, into
//! what the local stack needs to recreate: tables, queues, buckets, the SES
//! identity and configuration set, the functions with their environment,
//! HTTP routes and SQS subscriptions.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::Value;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("parsing template.yaml: {0}")]
    Parse(#[from] serde_yaml::Error),
    #[error("template.yaml: {0}")]
    Shape(String),
}

#[derive(Debug, Clone)]
pub struct Table {
    pub logical_id: String,
    pub key: String,
    pub ttl_attribute: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Queue {
    pub logical_id: String,
    pub visibility_timeout: Option<i64>,
    pub dead_letter_queue: Option<(String, i64)>,
}

/// The path of API Gateway's catch-all route.
pub const DEFAULT_ROUTE: &str = "$default";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub binary: String,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub queue: String,
    pub binary: String,
    pub batch_size: i32,
    /// The consumer function's timeout in seconds (its own, else Globals').
    pub consumer_timeout: i64,
}

/// A function triggered by S3 events of a bucket.
#[derive(Debug, Clone)]
pub struct S3Trigger {
    pub bucket: String,
    pub events: Vec<String>,
    pub prefix: Option<String>,
    pub binary: String,
    /// How many times Lambda runs a failing event (1 + MaximumRetryAttempts).
    pub attempts: u32,
    /// The queue (logical id) of the on-failure destination, if any.
    pub on_failure: Option<String>,
}

/// A function of the template, with what Lambda gives it besides its events.
#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the cargo binary deployed.
    pub binary: String,
    /// `MemorySize` in MB (its own, else Globals', else Lambda's 128).
    pub memory_size: i64,
    /// `Timeout` in seconds (its own, else Globals', else Lambda's 3).
    pub timeout: i64,
    /// Its own `Environment.Variables`, unresolved; they override Globals'.
    pub environment: Vec<(String, Value)>,
}

#[derive(Debug, Clone, Default)]
pub struct Template {
    pub tables: Vec<Table>,
    pub queues: Vec<Queue>,
    pub buckets: Vec<String>,
    /// Parameter names of SES identities, resolved to their defaults.
    pub sender_identities: Vec<String>,
    /// Logical ids of SES configuration sets.
    pub configuration_sets: Vec<String>,
    pub functions: Vec<Function>,
    pub routes: Vec<Route>,
    pub subscriptions: Vec<Subscription>,
    pub s3_triggers: Vec<S3Trigger>,
    /// Environment every function gets (Globals), unresolved.
    pub environment: Vec<(String, Value)>,
    /// Timeout of every function that sets none (Globals; Lambda's default 3 s).
    pub default_timeout: i64,
    /// Memory of every function that sets none (Globals; Lambda's default 128 MB).
    pub default_memory_size: i64,
    pub parameters: BTreeMap<String, String>,
}

/// A plain value, `!Ref` or `!Sub` with `${Name}` placeholders, resolved by
/// `lookup` (parameters and physical names).
pub fn resolve(value: &Value, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(tagged) if tagged.tag == "!Sub" => {
            let mut text = tagged.value.as_str()?.to_owned();
            while let Some(start) = text.find("${") {
                let end = start + text.get(start..)?.find('}')?;
                let name = text.get(start + 2..end)?.to_owned();
                text.replace_range(start..=end, &lookup(&name)?);
            }
            Some(text)
        }
        Value::Tagged(tagged) if tagged.tag == "!Ref" => lookup(tagged.value.as_str()?),
        _ => None,
    }
}

fn shape(message: impl Into<String>) -> TemplateError {
    TemplateError::Shape(message.into())
}

/// The logical id a `!Ref X` or `!GetAtt X.Arn` points at.
pub fn reference(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) => match (tagged.tag.to_string().as_str(), &tagged.value) {
            ("!Ref", Value::String(id)) => Some(id.clone()),
            ("!GetAtt", Value::String(path)) => path.split('.').next().map(str::to_owned),
            _ => None,
        },
        _ => None,
    }
}

fn get<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_mapping().and_then(|m| m.get(key))
}

fn string(value: &Value, key: &str) -> Option<String> {
    get(value, key).and_then(Value::as_str).map(str::to_owned)
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|e| TemplateError::Read(path.display().to_string(), e))?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let root: Value = serde_yaml::from_str(text)?;
        let mut template = Template::default();
        if let Some(parameters) = get(&root, "Parameters").and_then(Value::as_mapping) {
            for (name, definition) in parameters {
                let default = match get(definition, "Default") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                };
                if let Some(name) = name.as_str() {
                    template.parameters.insert(name.to_owned(), default);
                }
            }
        }
        let globals = get(&root, "Globals").and_then(|g| get(g, "Function"));
        template.default_timeout = globals.and_then(|f| get(f, "Timeout")).and_then(Value::as_i64).unwrap_or(3);
        template.default_memory_size =
            globals.and_then(|f| get(f, "MemorySize")).and_then(Value::as_i64).unwrap_or(128);
        if let Some(globals) = globals {
            template.environment = variables(globals);
        }
        let resources = get(&root, "Resources").and_then(Value::as_mapping).ok_or_else(|| shape("no Resources"))?;
        for (id, resource) in resources {
            let id = id.as_str().ok_or_else(|| shape("a resource id is not text"))?.to_owned();
            let kind = string(resource, "Type").unwrap_or_default();
            let empty = Value::Null;
            let properties = get(resource, "Properties").unwrap_or(&empty);
            match kind.as_str() {
                "AWS::DynamoDB::Table" => template.tables.push(table(&id, properties)?),
                "AWS::SQS::Queue" => template.queues.push(queue(&id, properties)),
                "AWS::S3::Bucket" => template.buckets.push(id),
                "AWS::SES::EmailIdentity" => {
                    let identity = get(properties, "EmailIdentity").ok_or_else(|| shape("EmailIdentity missing"))?;
                    let value = reference(identity)
                        .and_then(|p| template.parameters.get(&p).cloned())
                        .or_else(|| identity.as_str().map(str::to_owned))
                        .ok_or_else(|| shape("EmailIdentity is neither text nor a parameter"))?;
                    template.sender_identities.push(value);
                }
                "AWS::SES::ConfigurationSet" => template.configuration_sets.push(id),
                "AWS::Serverless::Function" => function(&mut template, &id, resource, properties)?,
                _ => {}
            }
        }
        template.routes.sort();
        Ok(template)
    }
}

/// `Environment.Variables` of a function or of Globals, unresolved.
fn variables(function: &Value) -> Vec<(String, Value)> {
    get(function, "Environment")
        .and_then(|e| get(e, "Variables"))
        .and_then(Value::as_mapping)
        .map(|variables| variables.iter().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone()))).collect())
        .unwrap_or_default()
}

fn table(id: &str, properties: &Value) -> Result<Table, TemplateError> {
    let key = get(properties, "KeySchema")
        .and_then(Value::as_sequence)
        .and_then(|keys| keys.iter().find(|k| string(k, "KeyType").as_deref() == Some("HASH")))
        .and_then(|k| string(k, "AttributeName"))
        .ok_or_else(|| shape(format!("{id}: no HASH key")))?;
    let ttl_attribute = get(properties, "TimeToLiveSpecification").and_then(|t| string(t, "AttributeName"));
    Ok(Table { logical_id: id.to_owned(), key, ttl_attribute })
}

fn queue(id: &str, properties: &Value) -> Queue {
    let visibility_timeout = get(properties, "VisibilityTimeout").and_then(Value::as_i64);
    let dead_letter_queue = get(properties, "RedrivePolicy").and_then(|policy| {
        let target = get(policy, "deadLetterTargetArn").and_then(reference)?;
        let max = get(policy, "maxReceiveCount").and_then(Value::as_i64).unwrap_or(5);
        Some((target, max))
    });
    Queue { logical_id: id.to_owned(), visibility_timeout, dead_letter_queue }
}

fn function(template: &mut Template, id: &str, resource: &Value, properties: &Value) -> Result<(), TemplateError> {
    let binary = get(resource, "Metadata")
        .and_then(|m| get(m, "BuildProperties"))
        .and_then(|b| string(b, "Binary"))
        .ok_or_else(|| shape(format!("{id}: Metadata.BuildProperties.Binary missing")))?;
    let timeout = get(properties, "Timeout").and_then(Value::as_i64).unwrap_or(template.default_timeout);
    template.functions.push(Function {
        logical_id: id.to_owned(),
        binary: binary.clone(),
        memory_size: get(properties, "MemorySize").and_then(Value::as_i64).unwrap_or(template.default_memory_size),
        timeout,
        environment: variables(properties),
    });
    let Some(events) = get(properties, "Events").and_then(Value::as_mapping) else {
        return Ok(());
    };
    let invoke_config = get(properties, "EventInvokeConfig");
    // Lambda's default for asynchronous invocations is two retries.
    let retries = invoke_config.and_then(|c| get(c, "MaximumRetryAttempts")).and_then(Value::as_u64).unwrap_or(2);
    let on_failure = invoke_config
        .and_then(|c| get(c, "DestinationConfig"))
        .and_then(|d| get(d, "OnFailure"))
        .filter(|f| string(f, "Type").as_deref() == Some("SQS"))
        .and_then(|f| get(f, "Destination"))
        .and_then(reference);
    for event in events.values() {
        let empty = Value::Null;
        let event_properties = get(event, "Properties").unwrap_or(&empty);
        match string(event, "Type").as_deref() {
            // No path and method: API Gateway's $default route (any other request).
            Some("HttpApi") => template.routes.push(Route {
                method: string(event_properties, "Method").unwrap_or_else(|| "ANY".into()).to_uppercase(),
                path: string(event_properties, "Path").unwrap_or_else(|| DEFAULT_ROUTE.into()),
                binary: binary.clone(),
            }),
            Some("SQS") => template.subscriptions.push(Subscription {
                queue: get(event_properties, "Queue")
                    .and_then(reference)
                    .ok_or_else(|| shape(format!("{id}: SQS event without a queue")))?,
                binary: binary.clone(),
                batch_size: get(event_properties, "BatchSize")
                    .and_then(Value::as_i64)
                    .and_then(|b| i32::try_from(b).ok())
                    .unwrap_or(10),
                consumer_timeout: timeout,
            }),
            Some("S3") => {
                let events = match get(event_properties, "Events") {
                    Some(Value::String(e)) => vec![e.clone()],
                    Some(Value::Sequence(list)) => list.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect(),
                    _ => Vec::new(),
                };
                let prefix = get(event_properties, "Filter")
                    .and_then(|f| get(f, "S3Key"))
                    .and_then(|k| get(k, "Rules"))
                    .and_then(Value::as_sequence)
                    .and_then(|rules| rules.iter().find(|r| string(r, "Name").as_deref() == Some("prefix")))
                    .and_then(|r| string(r, "Value"));
                template.s3_triggers.push(S3Trigger {
                    bucket: get(event_properties, "Bucket")
                        .and_then(reference)
                        .ok_or_else(|| shape(format!("{id}: S3 event without a bucket")))?,
                    events,
                    prefix,
                    binary: binary.clone(),
                    attempts: u32::try_from(retries).unwrap_or(2) + 1,
                    on_failure: on_failure.clone(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS asks for a queue's visibility timeout of at least six times its
    /// consumer's timeout: less, and a healthy job that is still running is
    /// delivered again, and ends in the dead-letter queue.
    #[test]
    fn every_queue_gives_its_consumer_six_times_its_timeout() {
        let template = Template::load(&crate::repo_root().join("template.yaml")).unwrap();
        assert!(!template.subscriptions.is_empty());
        for subscription in &template.subscriptions {
            let queue = template.queues.iter().find(|q| q.logical_id == subscription.queue).unwrap();
            // SQS's default visibility timeout is 30 s.
            let visibility = queue.visibility_timeout.unwrap_or(30);
            assert!(
                visibility >= 6 * subscription.consumer_timeout,
                "{}: visibility {visibility} s, consumer {} times out at {} s",
                subscription.queue,
                subscription.binary,
                subscription.consumer_timeout
            );
        }
    }

    #[test]
    fn a_function_without_a_timeout_takes_the_global_one() {
        let text = "Globals: {Function: {Timeout: 15}}\nResources:\n  Q: {Type: AWS::SQS::Queue}\n  F:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildProperties: {Binary: f}}\n    Properties:\n      Events: {E: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}}\n";
        let template = Template::parse(text).unwrap();
        assert_eq!(template.subscriptions[0].consumer_timeout, 15);
    }

    #[test]
    fn a_function_has_the_global_memory_and_environment_unless_it_sets_its_own() {
        let text = "Globals: {Function: {MemorySize: 256, Environment: {Variables: {A: one, B: two}}}}\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildProperties: {Binary: f}}\n    Properties:\n      MemorySize: 1024\n      Environment: {Variables: {B: three}}\n  G:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildProperties: {Binary: g}}\n";
        let template = Template::parse(text).unwrap();
        let names = |environment: &[(String, Value)]| -> Vec<String> {
            environment.iter().map(|(name, value)| format!("{name}={}", value.as_str().unwrap())).collect()
        };
        assert_eq!(names(&template.environment), ["A=one", "B=two"]);
        let f = template.functions.iter().find(|f| f.binary == "f").unwrap();
        assert_eq!((f.memory_size, names(&f.environment)), (1024, vec!["B=three".to_owned()]));
        let g = template.functions.iter().find(|f| f.binary == "g").unwrap();
        assert_eq!((g.memory_size, g.timeout, g.environment.len()), (256, 3, 0));
    }
}
