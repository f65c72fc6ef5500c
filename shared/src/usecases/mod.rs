//! What residents do, step by step, over the domain and the adapters. The
//! function crates call these and only render the outcome.

pub mod account;
pub mod address;
pub mod cabinet;
pub mod confirm;
pub mod identify;
#[cfg(feature = "import")]
pub mod import;
pub mod login;
pub mod mail_events;
pub mod password;
pub mod register;

/// How long the answers that must not tell whether a login exists take at
/// least (a reset link request, a resend): sending a letter takes time, and
/// the answer for an unknown login waits as long.
pub const UNIFORM_ANSWER_TIME: std::time::Duration = std::time::Duration::from_millis(400);

/// Waits until [`UNIFORM_ANSWER_TIME`] has passed since `started`.
pub(crate) async fn answer_no_sooner_than(started: tokio::time::Instant) {
    tokio::time::sleep_until(started + UNIFORM_ANSWER_TIME).await;
}
