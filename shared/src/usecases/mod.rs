//! What residents do, step by step, over the domain and the adapters. The
//! function crates call these and only render the outcome.

pub mod account;
pub mod address;
pub mod confirm;
pub mod identify;
pub mod import;
pub mod login;
pub mod mail_events;
pub mod password;
pub mod register;
