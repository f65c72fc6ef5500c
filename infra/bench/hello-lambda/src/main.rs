//! The reference of the cold-init benchmark (`infra/bench.sh`): a
//! hello-world `lambda_http` function. It is a workspace of its own, so no
//! feature asked for by the cabinet's crates is unified into it, and it is
//! built with the same release profile as the cabinet's functions.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_http::service_fn(|_request: lambda_http::Request| async {
        Ok::<_, std::convert::Infallible>(lambda_http::Response::new(lambda_http::Body::from("hello")))
    }))
    .await
}
