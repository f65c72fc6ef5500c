#![recursion_limit = "256"]

use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cabinet::web::init_tracing();
    let services: &'static cabinet::Services = Box::leak(Box::new(cabinet::Services::from_env().await?));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
        Ok::<_, std::convert::Infallible>(mail_events::handle(services, event.payload).await)
    }))
    .await
}
