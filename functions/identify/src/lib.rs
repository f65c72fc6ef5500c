//! SQS consumer: identifies residents whose wait is over. Failed messages are
//! reported one by one (`ReportBatchItemFailures`), so SQS retries just
//! those and, after the limit, moves them to the dead-letter queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use cabinet::Services;
use cabinet::queue::IdentificationJob;
use cabinet::usecases::identify::identify;

pub async fn handle(services: &Services, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.unwrap_or_default();
        let job = record.body.as_deref().map(serde_json::from_str::<IdentificationJob>);
        let succeeded = match job {
            Some(Ok(job)) => match identify(services, &job).await {
                Ok(outcome) => {
                    tracing::info!(message_id = %id, outcome = ?outcome, "identification job handled");
                    true
                }
                Err(error) => {
                    tracing::error!(message_id = %id, error = %error, "identification job failed; SQS will retry it");
                    false
                }
            },
            _ => {
                tracing::error!(message_id = %id, "identification job is malformed; it will end in the dead-letter queue");
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
