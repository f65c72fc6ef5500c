#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cabinet::consumer::run(mail_events::handle).await
}
