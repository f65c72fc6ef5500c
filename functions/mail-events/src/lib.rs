//! SQS consumer of SES bounce and complaint events (configuration set ->
//! SNS topic -> this queue): marks the addresses that do not take mail, so
//! residents are told at login instead of waiting for a letter that will
//! never come. Failed messages are reported one by one and end in the
//! dead-letter queue after the retries.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use cabinet::Services;
use cabinet::usecases::mail_events::{MailEvent, record_mail_event};

pub async fn handle(services: &Services, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.unwrap_or_default();
        let succeeded = match record.body.as_deref().map(MailEvent::parse) {
            Some(Ok(event)) => match record_mail_event(services, &event).await {
                Ok(marked) => {
                    tracing::info!(message_id = %id, marked, "mail event handled");
                    true
                }
                Err(error) => {
                    tracing::error!(message_id = %id, %error, "mail event failed; SQS will retry it");
                    false
                }
            },
            _ => {
                tracing::error!(message_id = %id, "mail event is malformed; it will end in the dead-letter queue");
                false
            }
        };
        if !succeeded {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
