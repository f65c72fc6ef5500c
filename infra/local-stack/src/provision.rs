//! Creates on the local endpoint what template.yaml declares, under names
//! prefixed per stack so that parallel tests never share a resource.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter, QueueConfiguration,
    S3KeyFilter,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::StackError;
use crate::template::Template;

/// Physical names of what was created, by logical id. For a queue this is
/// its URL, which is what `!Ref` gives in CloudFormation too.
#[derive(Debug, Clone, Default)]
pub struct Physical {
    pub names: HashMap<String, String>,
    pub queue_arns: HashMap<String, String>,
    /// For each S3-triggered function (by binary), the queue its bucket's
    /// notifications go to locally.
    pub s3_trigger_queues: HashMap<String, String>,
    /// What `${AWS::StackName}` gives (the metrics namespace): the prefix.
    pub stack_name: String,
}

fn failed(what: &str, error: impl std::fmt::Display) -> StackError {
    StackError::Provision(format!("{what}: {error}"))
}

pub async fn provision(template: &Template, aws: &SdkConfig, prefix: &str) -> Result<Physical, StackError> {
    let mut physical = Physical::default();
    prefix.clone_into(&mut physical.stack_name);
    let dynamodb = aws_sdk_dynamodb::Client::new(aws);
    for table in &template.tables {
        let name = format!("{prefix}-{}", table.logical_id);
        dynamodb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(&table.key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| failed("table definition", e))?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(&table.key)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(|e| failed("table key", e))?,
            )
            .send()
            .await
            .map_err(|e| failed(&format!("creating table {name}"), aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        if let Some(attribute) = &table.ttl_attribute {
            dynamodb
                .update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(attribute)
                        .enabled(true)
                        .build()
                        .map_err(|e| failed("TTL", e))?,
                )
                .send()
                .await
                .map_err(|e| failed("enabling TTL", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        }
        physical.names.insert(table.logical_id.clone(), name);
    }

    let sqs = aws_sdk_sqs::Client::new(aws);
    // Dead-letter queues first: the others point at them.
    let mut queues = template.queues.clone();
    queues.sort_by_key(|q| q.dead_letter_queue.is_some());
    for queue in &queues {
        let name = format!("{prefix}-{}", queue.logical_id);
        let mut request = sqs.create_queue().queue_name(&name);
        if let Some(timeout) = queue.visibility_timeout {
            request = request.attributes(QueueAttributeName::VisibilityTimeout, timeout.to_string());
        }
        if let Some((target, max_receive)) = &queue.dead_letter_queue {
            let arn = physical.queue_arns.get(target).ok_or_else(|| failed("dead-letter queue", target))?;
            let policy = serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receive});
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = request
            .send()
            .await
            .map_err(|e| failed(&format!("creating queue {name}"), aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .queue_url
            .ok_or_else(|| failed("creating queue", "no URL"))?;
        let arn = queue_arn(&sqs, &url).await?;
        physical.queue_arns.insert(queue.logical_id.clone(), arn);
        physical.names.insert(queue.logical_id.clone(), url);
    }

    let s3 = aws_sdk_s3::Client::new(aws);
    for bucket in &template.buckets {
        let name = format!("{prefix}-{}", bucket.to_lowercase());
        s3.create_bucket()
            .bucket(&name)
            .send()
            .await
            .map_err(|e| failed(&format!("creating bucket {name}"), aws_sdk_s3::error::DisplayErrorContext(e)))?;
        physical.names.insert(bucket.clone(), name);
    }

    // S3 invokes the function in AWS; locally the bucket notifies a queue
    // that the local stack drains into the same handler.
    for trigger in &template.s3_triggers {
        let bucket =
            physical.names.get(&trigger.bucket).cloned().ok_or_else(|| failed("S3 trigger", &trigger.bucket))?;
        let name = format!("{prefix}-{}-s3-events", trigger.binary);
        let url = sqs
            .create_queue()
            .queue_name(&name)
            // An import runs for as long as it needs (Lambda's limit); the
            // local stack retries a failed one itself, as Lambda does.
            .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "900")
            .send()
            .await
            .map_err(|e| failed("creating the S3 events queue", aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .queue_url
            .ok_or_else(|| failed("creating the S3 events queue", "no URL"))?;
        let arn = queue_arn(&sqs, &url).await?;
        let mut configuration = QueueConfiguration::builder().queue_arn(arn);
        for event in &trigger.events {
            configuration = configuration.events(Event::from(event.as_str()));
        }
        if let Some(prefix) = &trigger.prefix {
            let rule = FilterRule::builder().name(FilterRuleName::Prefix).value(prefix).build();
            configuration = configuration.filter(
                NotificationConfigurationFilter::builder()
                    .key(S3KeyFilter::builder().filter_rules(rule).build())
                    .build(),
            );
        }
        s3.put_bucket_notification_configuration()
            .bucket(&bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(configuration.build().map_err(|e| failed("S3 notification", e))?)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| failed("configuring S3 notifications", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        physical.s3_trigger_queues.insert(trigger.binary.clone(), url);
    }

    let ses = aws_sdk_sesv2::Client::new(aws);
    for identity in &template.sender_identities {
        ses.create_email_identity()
            .email_identity(identity)
            .send()
            .await
            .map_err(|e| failed("creating the SES identity", aws_sdk_sesv2::error::DisplayErrorContext(e)))?;
    }
    // Letters are sent through it as in AWS (moto publishes no events).
    for configuration_set in &template.configuration_sets {
        let name = format!("{prefix}-{configuration_set}");
        ses.create_configuration_set().configuration_set_name(&name).send().await.map_err(|e| {
            failed(&format!("creating configuration set {name}"), aws_sdk_sesv2::error::DisplayErrorContext(e))
        })?;
        physical.names.insert(configuration_set.clone(), name);
    }
    Ok(physical)
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, StackError> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| failed("reading a queue ARN", aws_sdk_sqs::error::DisplayErrorContext(e)))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| failed("reading a queue ARN", "none"))
}
