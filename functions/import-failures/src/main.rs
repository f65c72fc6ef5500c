#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    cabinet::consumer::run(import_failures::handle).await
}
