//! `local-stack`: the whole cabinet on this machine. Expects moto's server at
//! `AWS_ENDPOINT_URL` (infra/run-local.sh starts it).

use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    cabinet::web::init_tracing();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5000".into());
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let delay: u64 = std::env::var("IDENTIFY_DELAY_SECONDS").ok().and_then(|d| d.parse().ok()).unwrap_or(30);
    // A fresh prefix gives a fresh world on the same moto server.
    let prefix = std::env::var("STACK_PREFIX").unwrap_or_else(|_| "local".into());
    let mut options = local_stack::Options::new(endpoint, prefix);
    options.port = port;
    options.identify_delay = Duration::from_secs(delay);
    let stack = local_stack::start(options).await?;
    println!("Личный кабинет работает: {}/register", stack.url);
    println!("Письма: {}/_local/mail", stack.url);
    tokio::signal::ctrl_c().await?;
    Ok(())
}
