//! Delivers SQS messages to a consumer function as Lambda's event source
//! mapping does: batches, deleting what succeeded, leaving reported failures
//! for SQS to retry after the visibility timeout.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use cabinet::Services;

use crate::functions::{Batch, Upload};
use crate::template::{S3Trigger, Subscription};

pub async fn deliver(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    subscription: Subscription,
    handler: Batch,
    services: Arc<Services>,
) {
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(subscription.batch_size.clamp(1, 10))
            .wait_time_seconds(1)
            .send()
            .await;
        let messages = match received {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(error), "receiving from SQS failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let mut event = SqsEvent::default();
        for message in &messages {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id.clone();
            record.receipt_handle = message.receipt_handle.clone();
            record.body = message.body.clone();
            event.records.push(record);
        }
        let response = handler(services.clone(), event).await;
        for message in messages {
            let failed = response
                .batch_item_failures
                .iter()
                .any(|f| Some(f.item_identifier.as_str()) == message.message_id.as_deref());
            if failed {
                continue;
            }
            if let Some(handle) = message.receipt_handle {
                if let Err(error) = sqs.delete_message().queue_url(&queue_url).receipt_handle(handle).send().await {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(error), "deleting a message failed");
                }
            }
        }
    }
}

/// Where an S3-triggered function's events come from and where its failures go.
pub struct S3Delivery {
    pub queue_url: String,
    pub trigger: S3Trigger,
    /// The queue of the on-failure destination.
    pub failures_url: Option<String>,
}

/// Delivers a bucket's notifications to an S3-triggered function, one event
/// at a time, as S3 invokes a Lambda asynchronously: a failed invocation is
/// run again (1 s, then 2 s later; Lambda waits minutes) until its attempts
/// are spent, then the invocation record goes to the on-failure queue,
/// shaped as Lambda's destination sends it.
pub async fn deliver_s3(sqs: aws_sdk_sqs::Client, delivery: S3Delivery, handler: Upload, services: Arc<Services>) {
    let queue_url = delivery.queue_url.as_str();
    loop {
        let received =
            sqs.receive_message().queue_url(queue_url).max_number_of_messages(1).wait_time_seconds(1).send().await;
        let messages = match received {
            Ok(output) => output.messages.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(error), "receiving S3 events failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for message in messages {
            let event = match s3_event(message.body.as_deref().unwrap_or_default()) {
                Ok(event) => event,
                Err(error) => {
                    tracing::error!(%error, "an S3 notification could not be read; it stays on the queue");
                    continue;
                }
            };
            let mut attempt = 0;
            let failure = loop {
                attempt += 1;
                let outcome = handler(services.clone(), event.clone()).await;
                match outcome {
                    Ok(()) => break None,
                    Err(error) if attempt >= delivery.trigger.attempts => break Some(error),
                    Err(error) => {
                        tracing::error!(%error, attempt, "import failed; it will be run again");
                        tokio::time::sleep(Duration::from_secs(attempt.into())).await;
                    }
                }
            };
            if let Some(error) = failure {
                tracing::error!(%error, attempts = attempt, "import failed for good");
                let Some(failures_url) = delivery.failures_url.as_deref() else { continue };
                let record = serde_json::json!({
                    "version": "1.0",
                    "timestamp": cabinet::clock::rfc3339(cabinet::clock::now()),
                    "requestContext": {"requestId": uuid::Uuid::new_v4().to_string(),
                                       "functionArn": format!("arn:aws:lambda:local:000000000000:function:{}:$LATEST", delivery.trigger.binary),
                                       "condition": "RetriesExhausted", "approximateInvokeCount": attempt},
                    "requestPayload": event,
                    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                    "responsePayload": {"errorType": "Unexpected", "errorMessage": error.to_string()},
                });
                if let Err(error) =
                    sqs.send_message().queue_url(failures_url).message_body(record.to_string()).send().await
                {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(error), "sending the failure record failed");
                    continue;
                }
            }
            if let Some(handle) = message.receipt_handle {
                if let Err(error) = sqs.delete_message().queue_url(queue_url).receipt_handle(handle).send().await {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(error), "deleting an S3 event failed");
                }
            }
        }
    }
}

/// The S3 event of a notification message, in the shape S3 gives Lambda.
/// moto's notifications leave out the identity fields, which the event type
/// requires; they are filled with local values. S3's `s3:TestEvent` (sent
/// when notifications are configured) has no records.
fn s3_event(body: &str) -> Result<S3Event, serde_json::Error> {
    let mut value: serde_json::Value = serde_json::from_str(body)?;
    if let Some(records) = value.get_mut("Records").and_then(|r| r.as_array_mut()) {
        for record in records {
            if let Some(record) = record.as_object_mut() {
                record.entry("userIdentity").or_insert_with(|| serde_json::json!({"principalId": "local"}));
                record
                    .entry("requestParameters")
                    .or_insert_with(|| serde_json::json!({"sourceIPAddress": "127.0.0.1"}));
                record.entry("responseElements").or_insert_with(|| serde_json::json!({}));
            }
        }
    } else {
        return Ok(S3Event::default());
    }
    serde_json::from_value(value)
}
