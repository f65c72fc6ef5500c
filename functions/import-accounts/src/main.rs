#![recursion_limit = "256"]

use aws_lambda_events::event::s3::S3Event;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cabinet::web::init_tracing();
    let services: &'static cabinet::Services =
        Box::leak(Box::new(cabinet::Services::from_env_with(cabinet::services::import_timeouts()).await?));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        let outcomes = import_accounts::handle(services, event.payload).await?;
        Ok::<_, lambda_runtime::Error>(format!("{} file(s) handled", outcomes.len()))
    }))
    .await
}
