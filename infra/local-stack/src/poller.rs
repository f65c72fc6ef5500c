//! Delivers SQS messages to a consumer function as Lambda's event source
//! mapping does: batches, deleting what succeeded, leaving reported failures
//! for SQS to retry after the visibility timeout.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use cabinet::Services;

use crate::template::Subscription;

pub async fn deliver(sqs: aws_sdk_sqs::Client, queue_url: String, subscription: Subscription, services: Arc<Services>) {
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
        let response = match subscription.binary.as_str() {
            "identify" => identify::handle(&services, event).await,
            "mail-events" => mail_events::handle(&services, event).await,
            other => {
                tracing::error!(function = other, "no local handler for this SQS function");
                return;
            }
        };
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

/// Delivers a bucket's notifications to an S3-triggered function, one event
/// at a time, as S3 invokes a Lambda. A failed import stays on the queue and
/// is retried after the visibility timeout (Lambda retries async
/// invocations too).
pub async fn deliver_s3(sqs: aws_sdk_sqs::Client, queue_url: String, binary: String, services: Arc<Services>) {
    loop {
        let received =
            sqs.receive_message().queue_url(&queue_url).max_number_of_messages(1).wait_time_seconds(1).send().await;
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
            let succeeded = match binary.as_str() {
                "import-accounts" => match import_accounts::handle(&services, event).await {
                    Ok(_) => true,
                    Err(error) => {
                        tracing::error!(%error, "import failed; the event will be delivered again");
                        false
                    }
                },
                other => {
                    tracing::error!(function = other, "no local handler for this S3 function");
                    return;
                }
            };
            if let (true, Some(handle)) = (succeeded, message.receipt_handle) {
                if let Err(error) = sqs.delete_message().queue_url(&queue_url).receipt_handle(handle).send().await {
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
