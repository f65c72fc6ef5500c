//! SQS consumers (`identify`, `mail-events`): each message is handled on
//! its own and failures are reported one by one (`ReportBatchItemFailures`),
//! so SQS retries just those and, after the limit, moves them to the
//! dead-letter queue.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_http::lambda_runtime::{self, LambdaEvent};

use crate::Services;

/// Handles every message of `event` with `handle` (message id, body →
/// handled?), and lists the ones that were not.
pub async fn each_message<F, Fut>(event: SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(String, Option<String>) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.unwrap_or_default();
        if !handle(id.clone(), record.body).await {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// The whole `main` of an SQS consumer: logs, adapters built once, then the
/// Lambda runtime feeding `handler` one batch at a time.
pub async fn run<Fut>(handler: fn(&'static Services, SqsEvent) -> Fut) -> Result<(), lambda_runtime::Error>
where
    Fut: Future<Output = SqsBatchResponse> + Send + 'static,
{
    crate::web::init_tracing();
    // Leaked once at start-up: the adapters live as long as the process.
    let services: &'static Services = Box::leak(Box::new(Services::from_env().await?));
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, std::convert::Infallible>(handler(services, event.payload).await)
    }))
    .await
}
