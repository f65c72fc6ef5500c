#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    cabinet::web::run_http_without_aws(pages::routes).await
}
