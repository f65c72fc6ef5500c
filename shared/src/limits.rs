//! Rate limits and the login lock, all thresholds in one place (the README
//! lists them). Counters live in DynamoDB with TTL and are atomic
//! (`Store::count_attempt`, `Store::swap_lock_record`); a refused attempt
//! is answered with 429 `rate_limited`, `Retry-After` and a Russian "try
//! again in N minutes".

use std::time::Duration;

use crate::audit::{self, AuditEvent, Entry};
use crate::clock;
use crate::domain::{Email, Login};
use crate::errors::Unexpected;
use crate::services::Services;
use crate::text;

/// How many attempts of an action one subject may make per window.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub action: &'static str,
    pub attempts: u32,
    pub window: Duration,
}

const HOUR: Duration = Duration::from_secs(3600);

/// Resending the confirmation letter, per login identifier.
pub const RESEND_CONFIRMATION: Limit = Limit { action: "resend", attempts: 3, window: Duration::from_secs(15 * 60) };

/// Changing the address of an unconfirmed registration, per login
/// identifier; counted once the password checked out, so a stranger
/// guessing passwords (bounded by the login lock) cannot use it up.
pub const CHANGE_EMAIL: Limit = Limit { action: "change-email", attempts: 5, window: HOUR };

/// Changing a confirmed address from the account page, per resident; its
/// own count, also taken once the password checked out.
pub const CHANGE_CONFIRMED_EMAIL: Limit = Limit { action: "account-email", attempts: 5, window: HOUR };

/// Asking for a password reset letter, per login identifier.
pub const PASSWORD_RESET: Limit = Limit { action: "reset", attempts: 3, window: Duration::from_secs(15 * 60) };

/// Registration attempts per account number: nobody may guess the payer's
/// name of an account by trying names.
pub const REGISTER_PER_ACCOUNT: Limit = Limit { action: "register-account", attempts: 20, window: HOUR };

/// Per source IP address. Generous, since a whole building may share one
/// address behind a provider's NAT; they stop scripts, not neighbours.
pub const LOGIN_PER_IP: Limit = Limit { action: "login-ip", attempts: 100, window: Duration::from_secs(15 * 60) };
pub const REGISTER_PER_IP: Limit = Limit { action: "register-ip", attempts: 30, window: HOUR };
/// Resend, address change and password reset together.
pub const MAIL_PER_IP: Limit = Limit { action: "mail-ip", attempts: 30, window: HOUR };

/// Letters (confirmation again, password reset) to one mailbox, however
/// they were asked for. Over it, nothing is sent and the answer stays the
/// same, so the limit tells nothing about who is registered.
pub const LETTERS_PER_MAILBOX: Limit = Limit { action: "mailbox", attempts: 6, window: HOUR };

/// Name checks per account number per day, taken before the name is
/// compared (so parallel guesses cannot overrun it): past them,
/// registration of the account pauses for [`REGISTRATION_PAUSE`]. Ten tries
/// cover a tiny part of the names a stranger would have to guess, and a
/// resident who mistypes ten times is better helped by the office.
pub const NAME_MISMATCHES_PER_ACCOUNT: Limit =
    Limit { action: "name-mismatch", attempts: 10, window: Duration::from_secs(24 * 3600) };
/// How long registration of an account pauses after too many name mismatches.
pub const REGISTRATION_PAUSE: Duration = Duration::from_secs(24 * 3600);

/// The lock subject of a registration pause.
pub fn registration_subject(account: &crate::domain::AccountNumber) -> String {
    format!("register:{account}")
}

/// Login failures of one resident (or unknown identifier) before it is locked.
pub const LOGIN_FAILURES_BEFORE_LOCK: u32 = 5;
/// The longest lock: it is never permanent, or anyone could lock a resident
/// out by typing wrong passwords for them.
pub const LOGIN_LOCK_MAX: Duration = Duration::from_secs(15 * 60);
/// Failures are forgotten this long after the last one (or at a successful
/// login, or a password reset).
pub const LOGIN_FAILURE_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// The lock earned by the `failures`-th failure in a row: none before
/// [`LOGIN_FAILURES_BEFORE_LOCK`], then `base`, doubling with each further
/// failure, at most [`LOGIN_LOCK_MAX`].
pub fn lock_duration(failures: u32, base: Duration) -> Option<Duration> {
    let beyond = failures.checked_sub(LOGIN_FAILURES_BEFORE_LOCK)?;
    let factor = 1u32.checked_shl(beyond.min(16)).unwrap_or(u32::MAX);
    Some(base.saturating_mul(factor).min(LOGIN_LOCK_MAX))
}

/// A refused attempt: try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited for {retry_after_seconds} s")]
pub struct RateLimited {
    pub retry_after_seconds: u64,
}

/// The key a login identifier is counted under, as normalized (so
/// "100 200 300" and "100200300" count together). The login lock counts a
/// known resident under [`resident_subject`] instead, whichever identifier
/// was typed.
pub fn login_subject(login: &str) -> String {
    match Login::parse(login) {
        Some(Login::Email(email)) => format!("email:{email}"),
        Some(Login::Account(account)) => format!("account:{account}"),
        None => format!("text:{}", text::fold(login).to_lowercase()),
    }
}

/// Counts an attempt under each `(limit, subject)` in turn; the first limit
/// exceeded refuses it, and the refusal goes to the audit log with `entry`.
pub async fn check(
    services: &Services,
    checks: &[(Limit, &str)],
    entry: Entry<'_>,
) -> Result<Result<(), RateLimited>, Unexpected> {
    Counted::default().check(services, checks, entry).await
}

/// The attempts one request has counted so far, to be given back together
/// when the request then fails on our side ([`Counted::give_back`]): a
/// fault must not use up a resident's tries.
#[derive(Debug, Default)]
pub struct Counted(Vec<(Limit, String, time::OffsetDateTime)>);

impl Counted {
    /// As [`check`], keeping each attempt it counted.
    pub async fn check(
        &mut self,
        services: &Services,
        checks: &[(Limit, &str)],
        entry: Entry<'_>,
    ) -> Result<Result<(), RateLimited>, Unexpected> {
        for (limit, subject) in checks {
            let now = clock::now();
            let counted =
                services.store.count_attempt(limit.action, subject, limit.window, limit.attempts, now).await?;
            self.0.push((*limit, (*subject).to_owned(), now));
            if let Err(retry_after_seconds) = counted {
                audit::record(services, AuditEvent::RateLimited, Entry { detail: Some(limit.action), ..entry }).await;
                return Ok(Err(RateLimited { retry_after_seconds }));
            }
        }
        Ok(Ok(()))
    }

    /// Gives back every attempt counted, each to the window it was counted
    /// in (that window may have ended meanwhile). Best effort: the store may
    /// be what failed.
    pub async fn give_back(self, services: &Services) {
        for (limit, subject, at) in self.0 {
            if let Err(error) = services.store.refund_attempt(limit.action, &subject, limit.window, at).await {
                tracing::warn!(error = %error, action = limit.action, "an attempt could not be given back");
            }
        }
    }
}

/// Whether one more letter may go to `email` now (counted).
pub async fn mailbox_allows(services: &Services, email: &Email) -> Result<bool, Unexpected> {
    let subject = mailbox_subject(email);
    let allowed = check(services, &[(LETTERS_PER_MAILBOX, &subject)], Entry::default()).await?.is_ok();
    if !allowed {
        tracing::warn!("letter not sent: too many letters to one mailbox");
    }
    Ok(allowed)
}

/// Gives back the letter counted by [`mailbox_allows`] when it was not sent.
pub async fn give_back_letter(services: &Services, email: &Email) -> Result<(), Unexpected> {
    let limit = LETTERS_PER_MAILBOX;
    services.store.refund_attempt(limit.action, &mailbox_subject(email), limit.window, clock::now()).await
}

/// The subject [`LETTERS_PER_MAILBOX`] counts a mailbox under.
pub fn mailbox_subject(email: &Email) -> String {
    format!("email:{email}")
}

/// The lock subject of a resident, whichever identifier was typed.
pub fn resident_subject(account: &crate::domain::AccountNumber) -> String {
    format!("resident:{account}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_grow_from_the_fifth_failure_and_stop_at_fifteen_minutes() {
        let base = Duration::from_secs(30);
        assert_eq!(lock_duration(4, base), None);
        assert_eq!(lock_duration(5, base), Some(Duration::from_secs(30)));
        assert_eq!(lock_duration(6, base), Some(Duration::from_secs(60)));
        assert_eq!(lock_duration(7, base), Some(Duration::from_secs(120)));
        assert_eq!(lock_duration(10, base), Some(LOGIN_LOCK_MAX));
        assert_eq!(lock_duration(u32::MAX, base), Some(LOGIN_LOCK_MAX));
    }

    #[test]
    fn one_identifier_counts_alike_however_typed() {
        assert_eq!(login_subject("100 200 300"), login_subject("100200300"));
        assert_eq!(login_subject(" Ivanov@Mail.ru"), login_subject("ivanov@mail.ru"));
    }
}
