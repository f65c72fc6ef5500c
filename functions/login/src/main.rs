#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    cabinet::web::run_http(login::routes).await
}
