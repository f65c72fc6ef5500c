//! SQS consumer of the import's on-failure destination: when an import of a
//! billing export failed for good (its retries spent, a timeout, memory
//! exhausted), Lambda sends the invocation record here, and the billing team
//! still gets `reports/<file>.json`, with `status: import_failed`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use cabinet::Services;
use cabinet::consumer::each_message;
use cabinet::usecases::import::{FailedInvocation, report_failure};

pub async fn handle(services: &Services, event: SqsEvent) -> SqsBatchResponse {
    each_message(event, |id, body| async move {
        let Some(Ok(failed)) = body.as_deref().map(serde_json::from_str::<FailedInvocation>) else {
            tracing::error!(message_id = %id, "not a Lambda failure record; it will end in the dead-letter queue");
            return false;
        };
        match report_failure(services, &failed).await {
            Ok(written) => {
                tracing::info!(message_id = %id, written, "import failure handled");
                true
            }
            Err(error) => {
                tracing::error!(message_id = %id, error = %error, "writing the failure report failed; SQS will retry it");
                false
            }
        }
    })
    .await
}
