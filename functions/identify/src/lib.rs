//! SQS consumer: identifies residents whose wait is over.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use cabinet::Services;
use cabinet::consumer::each_message;
use cabinet::queue::IdentificationJob;
use cabinet::usecases::identify::identify;

pub async fn handle(services: &Services, event: SqsEvent) -> SqsBatchResponse {
    each_message(event, |id, body| async move {
        let Some(Ok(job)) = body.as_deref().map(serde_json::from_str::<IdentificationJob>) else {
            tracing::error!(message_id = %id, "identification job is malformed; it will end in the dead-letter queue");
            return false;
        };
        match identify(services, &job).await {
            Ok(outcome) => {
                tracing::info!(message_id = %id, outcome = ?outcome, "identification job handled");
                true
            }
            Err(error) => {
                tracing::error!(message_id = %id, error = %error, "identification job failed; SQS will retry it");
                false
            }
        }
    })
    .await
}
