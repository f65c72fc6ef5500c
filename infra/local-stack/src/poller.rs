//! Delivers SQS messages to a consumer function as Lambda's event source
//! mapping does: batches, deleting what succeeded, leaving reported failures
//! for SQS to retry after the visibility timeout.

use std::sync::Arc;
use std::time::Duration;

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
