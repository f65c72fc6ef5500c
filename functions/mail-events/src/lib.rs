//! SQS consumer of SES bounce and complaint events (configuration set ->
//! SNS topic -> this queue): marks the addresses that do not take mail, so
//! residents are told at login instead of waiting for a letter that will
//! never come.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use cabinet::Services;
use cabinet::consumer::each_message;
use cabinet::usecases::mail_events::{MailEvent, record_mail_event};

pub async fn handle(services: &Services, event: SqsEvent) -> SqsBatchResponse {
    each_message(event, |id, body| async move {
        let Some(Ok(event)) = body.as_deref().map(MailEvent::parse) else {
            tracing::error!(message_id = %id, "mail event is malformed; it will end in the dead-letter queue");
            return false;
        };
        match record_mail_event(services, &event).await {
            Ok(marked) => {
                tracing::info!(message_id = %id, marked, "mail event handled");
                true
            }
            Err(error) => {
                tracing::error!(message_id = %id, %error, "mail event failed; SQS will retry it");
                false
            }
        }
    })
    .await
}
