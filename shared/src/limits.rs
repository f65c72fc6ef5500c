//! Rate limits, all in one place. Counters live in DynamoDB with TTL
//! (`Store::count_attempt`); a refused attempt is answered with 429
//! `rate_limited` and `Retry-After`.

use std::time::Duration;

/// How many attempts of an action one subject may make per window.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub action: &'static str,
    pub attempts: u32,
    pub window: Duration,
}

/// Resending the confirmation letter, per login identifier.
pub const RESEND_CONFIRMATION: Limit = Limit { action: "resend", attempts: 3, window: Duration::from_secs(15 * 60) };

/// Changing the address of an unconfirmed registration, per login identifier.
pub const CHANGE_EMAIL: Limit = Limit { action: "change-email", attempts: 5, window: Duration::from_secs(60 * 60) };
