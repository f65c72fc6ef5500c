//! Resident cabinet of ООО «Потенциал»: the domain (what a valid account
//! number, name or password is, and who matches whom), the use cases
//! (register, confirm, identify, log in), the AWS adapters (DynamoDB, SES v2,
//! SQS) and the pages and letters. The Lambda crates in `functions/` are thin
//! entry points over this crate.

pub mod audit;
#[cfg(feature = "import")]
pub mod billing;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod domain;
pub mod errors;
#[cfg(feature = "import")]
pub mod files;
mod forms;
pub mod letters;
pub mod limits;
pub mod links;
pub mod mail;
pub mod metrics;
pub mod numerals;
pub mod queue;
pub mod services;
pub mod store;
pub mod text;
pub mod usecases;
pub mod web;

pub use config::Config;
pub use services::Services;
