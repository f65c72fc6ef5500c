//! Rate limits and the login lock, all thresholds in one place (the README
//! lists them). Counters live in DynamoDB with TTL and are atomic
//! (`Counters::count`, `Counters::swap_lock_record`); a refused attempt
//! is answered with 429 `rate_limited`, `Retry-After` and a Russian "try
//! again in N minutes".

use std::time::Duration;

use crate::audit::{self, AuditEvent, Entry};
use crate::clock;
use crate::domain::{AccountNumber, Email, Login, TokenHash};
use crate::errors::Unexpected;
use crate::services::Services;
use crate::store::LockRecord;
use crate::text;

/// What is counted: the name of a limit, in its counters' keys
/// (`RATE#<action>#...`) and in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Resend,
    ChangeEmail,
    AccountEmail,
    Reset,
    RegisterAccount,
    LoginIp,
    RegisterIp,
    MailIp,
    Mailbox,
    NameMismatch,
}

impl Action {
    /// As stored in keys and audited; never changes, or counters already
    /// running would be forgotten.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resend => "resend",
            Self::ChangeEmail => "change-email",
            Self::AccountEmail => "account-email",
            Self::Reset => "reset",
            Self::RegisterAccount => "register-account",
            Self::LoginIp => "login-ip",
            Self::RegisterIp => "register-ip",
            Self::MailIp => "mail-ip",
            Self::Mailbox => "mailbox",
            Self::NameMismatch => "name-mismatch",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is counted or locked: one spelling per kind, so that whoever clears
/// a lock (a reset, a success) names exactly what was counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A source IP address, as is.
    Ip(String),
    /// An account number (the per-account and per-resident limits), as is.
    Account(AccountNumber),
    /// An address typed as a login, or a mailbox letters go to:
    /// `email:<address>`.
    Email(Email),
    /// An account number typed as a login: `account:<number>`.
    LoginAccount(AccountNumber),
    /// Anything else typed as a login, folded and lower-cased: `text:<it>`.
    LoginText(String),
    /// A resident's own lock, whichever identifier was typed:
    /// `resident:<account>`.
    Resident(AccountNumber),
    /// A browser that logged in as a resident: `device:<hash of its cookie>`.
    Device(TokenHash),
    /// The registration pause of an account: `register:<account>`.
    Registration(AccountNumber),
    /// The count with the same calls as a resident's, for an unknown login
    /// or a known browser: `decoy:<subject>`.
    Decoy(Box<Subject>),
}

impl Subject {
    /// A login identifier as typed, normalized (so "100 200 300" and
    /// "100200300" count together). The login lock counts a known resident
    /// under [`Subject::Resident`] as well, whichever identifier was typed.
    pub fn login(typed: &str) -> Self {
        match Login::parse(typed) {
            Some(Login::Email(email)) => Self::Email(email),
            Some(Login::Account(account)) => Self::LoginAccount(account),
            None => Self::LoginText(text::fold(typed).to_lowercase()),
        }
    }

    pub fn ip(ip: &str) -> Self {
        Self::Ip(ip.to_owned())
    }

    /// The decoy count that stands in for this one.
    pub fn decoy(self) -> Self {
        Self::Decoy(Box::new(self))
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ip(ip) => f.write_str(ip),
            Self::Account(account) => write!(f, "{account}"),
            Self::Email(email) => write!(f, "email:{email}"),
            Self::LoginAccount(account) => write!(f, "account:{account}"),
            Self::LoginText(text) => write!(f, "text:{text}"),
            Self::Resident(account) => write!(f, "resident:{account}"),
            Self::Device(hash) => write!(f, "device:{}", hash.as_str()),
            Self::Registration(account) => write!(f, "register:{account}"),
            Self::Decoy(subject) => write!(f, "decoy:{subject}"),
        }
    }
}

/// How many attempts of an action one subject may make per window.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub action: Action,
    pub attempts: u32,
    pub window: Duration,
}

const HOUR: Duration = Duration::from_secs(3600);

/// Resending the confirmation letter, per login identifier.
pub const RESEND_CONFIRMATION: Limit =
    Limit { action: Action::Resend, attempts: 3, window: Duration::from_secs(15 * 60) };

/// Changing the address of an unconfirmed registration, per login
/// identifier; counted once the password checked out, so a stranger
/// guessing passwords (bounded by the login lock) cannot use it up.
pub const CHANGE_EMAIL: Limit = Limit { action: Action::ChangeEmail, attempts: 5, window: HOUR };

/// Changing a confirmed address from the account page, per resident; its
/// own count, also taken once the password checked out.
pub const CHANGE_CONFIRMED_EMAIL: Limit = Limit { action: Action::AccountEmail, attempts: 5, window: HOUR };

/// Asking for a password reset letter, per login identifier.
pub const PASSWORD_RESET: Limit = Limit { action: Action::Reset, attempts: 3, window: Duration::from_secs(15 * 60) };

/// Registration attempts per account number: nobody may guess the payer's
/// name of an account by trying names.
pub const REGISTER_PER_ACCOUNT: Limit = Limit { action: Action::RegisterAccount, attempts: 20, window: HOUR };

/// Per source IP address. Generous, since a whole building may share one
/// address behind a provider's NAT; they stop scripts, not neighbours.
pub const LOGIN_PER_IP: Limit = Limit { action: Action::LoginIp, attempts: 100, window: Duration::from_secs(15 * 60) };
pub const REGISTER_PER_IP: Limit = Limit { action: Action::RegisterIp, attempts: 30, window: HOUR };
/// Resend, address change and password reset together.
pub const MAIL_PER_IP: Limit = Limit { action: Action::MailIp, attempts: 30, window: HOUR };

/// Letters (confirmation again, password reset) to one mailbox, however
/// they were asked for. Over it, nothing is sent and the answer stays the
/// same, so the limit tells nothing about who is registered.
pub const LETTERS_PER_MAILBOX: Limit = Limit { action: Action::Mailbox, attempts: 6, window: HOUR };

/// Name checks per account number per day, taken before the name is
/// compared (so parallel guesses cannot overrun it): past them,
/// registration of the account pauses for [`REGISTRATION_PAUSE`]. Ten tries
/// cover a tiny part of the names a stranger would have to guess, and a
/// resident who mistypes ten times is better helped by the office.
pub const NAME_MISMATCHES_PER_ACCOUNT: Limit =
    Limit { action: Action::NameMismatch, attempts: 10, window: Duration::from_secs(24 * 3600) };
/// How long registration of an account pauses after too many name mismatches.
pub const REGISTRATION_PAUSE: Duration = Duration::from_secs(24 * 3600);

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

/// What an attempt at `now_ms` (Unix milliseconds) makes of the attempts
/// stored for its subject: refused while the subject is locked; else
/// counted, with the lock it earns should it fail (starting now) and the
/// time its failures are forgotten. A record past its `expires_at` counts
/// as none (DynamoDB deletes items only eventually).
pub fn next_attempt(stored: Option<LockRecord>, now_ms: i64, base: Duration) -> Result<LockRecord, RateLimited> {
    let now_s = now_ms.div_euclid(1000);
    let current = stored.filter(|r| r.expires_at > now_s).unwrap_or_default();
    if let Some(limited) = locked_at(&current, now_ms) {
        return Err(limited);
    }
    let failures = current.failures.saturating_add(1);
    let locked_until_ms = lock_duration(failures, base)
        .map_or(0, |lock| now_ms.saturating_add(i64::try_from(lock.as_millis()).unwrap_or(i64::MAX)));
    let memory = i64::try_from(LOGIN_FAILURE_MEMORY.as_secs()).unwrap_or(i64::MAX);
    Ok(LockRecord { failures, locked_until_ms, expires_at: now_s.saturating_add(memory) })
}

/// The refusal `record` gives at `now_ms` while its lock holds: try again
/// after the rest of it, in whole seconds rounded up.
pub fn locked_at(record: &LockRecord, now_ms: i64) -> Option<RateLimited> {
    let rest = record.locked_until_ms.checked_sub(now_ms).filter(|rest| *rest > 0)?;
    Some(RateLimited { retry_after_seconds: u64::try_from(rest).unwrap_or(1000).div_ceil(1000).max(1) })
}

/// A refused attempt: try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited for {retry_after_seconds} s")]
pub struct RateLimited {
    pub retry_after_seconds: u64,
}

/// Counts an attempt under each `(limit, subject)` in turn; the first limit
/// exceeded refuses it, and the refusal goes to the audit log with `entry`.
pub async fn check(
    services: &Services,
    checks: &[(Limit, &Subject)],
    entry: Entry<'_>,
) -> Result<Result<(), RateLimited>, Unexpected> {
    Counted::default().check(services, checks, entry).await
}

/// The attempts one request has counted so far, to be given back together
/// when the request then fails on our side ([`Counted::give_back`]): a
/// fault must not use up a resident's tries.
#[derive(Debug, Default)]
pub struct Counted(Vec<(Limit, Subject, time::OffsetDateTime)>);

impl Counted {
    /// As [`check`], keeping each attempt it counted.
    pub async fn check(
        &mut self,
        services: &Services,
        checks: &[(Limit, &Subject)],
        entry: Entry<'_>,
    ) -> Result<Result<(), RateLimited>, Unexpected> {
        for (limit, subject) in checks {
            let now = clock::now();
            let counted =
                services.store.counters.count(limit.action, subject, limit.window, limit.attempts, now).await?;
            self.0.push((*limit, (*subject).clone(), now));
            if let Err(retry_after_seconds) = counted {
                let detail = Some(limit.action.as_str());
                audit::record(services, AuditEvent::RateLimited, Entry { detail, ..entry }).await;
                return Ok(Err(RateLimited { retry_after_seconds }));
            }
        }
        Ok(Ok(()))
    }

    /// Keeps an attempt counted elsewhere (with another counter, in one
    /// transaction) to be given back with the others.
    pub fn note(&mut self, limit: Limit, subject: &Subject, at: time::OffsetDateTime) {
        self.0.push((limit, subject.clone(), at));
    }

    /// Gives back every attempt counted, each to the window it was counted
    /// in (that window may have ended meanwhile). Best effort: the store may
    /// be what failed.
    pub async fn give_back(self, services: &Services) {
        for (limit, subject, at) in self.0 {
            if let Err(error) = services.store.counters.refund(limit.action, &subject, limit.window, at).await {
                tracing::warn!(error = %error, action = limit.action.as_str(), "an attempt could not be given back");
            }
        }
    }
}

/// Whether one more letter may go to `email` now (counted).
pub async fn mailbox_allows(services: &Services, email: &Email) -> Result<bool, Unexpected> {
    let subject = Subject::Email(email.clone());
    let allowed = check(services, &[(LETTERS_PER_MAILBOX, &subject)], Entry::default()).await?.is_ok();
    if !allowed {
        tracing::warn!("letter not sent: too many letters to one mailbox");
    }
    Ok(allowed)
}

/// Gives back the letter counted by [`mailbox_allows`] when it was not sent.
pub async fn give_back_letter(services: &Services, email: &Email) -> Result<(), Unexpected> {
    let limit = LETTERS_PER_MAILBOX;
    let subject = Subject::Email(email.clone());
    services.store.counters.refund(limit.action, &subject, limit.window, clock::now()).await
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

    const BASE: Duration = Duration::from_secs(30);
    /// 25.11.2026 11:05 UTC, in Unix milliseconds.
    const NOW_MS: i64 = 1_795_604_700_000;

    #[test]
    fn the_first_attempts_are_counted_without_a_lock_and_forgotten_a_day_later() {
        let first = next_attempt(None, NOW_MS, BASE).unwrap();
        assert_eq!(first, LockRecord { failures: 1, locked_until_ms: 0, expires_at: NOW_MS / 1000 + 24 * 3600 });
        let fourth = next_attempt(Some(LockRecord { failures: 3, ..first }), NOW_MS, BASE).unwrap();
        assert_eq!((fourth.failures, fourth.locked_until_ms), (4, 0));
    }

    #[test]
    fn the_fifth_attempt_carries_the_lock_it_earns_should_it_fail() {
        let stored = LockRecord { failures: 4, locked_until_ms: 0, expires_at: NOW_MS / 1000 + 60 };
        let fifth = next_attempt(Some(stored), NOW_MS, BASE).unwrap();
        assert_eq!((fifth.failures, fifth.locked_until_ms), (5, NOW_MS + 30_000));
        let sixth = next_attempt(Some(LockRecord { locked_until_ms: NOW_MS - 1, ..fifth }), NOW_MS, BASE).unwrap();
        assert_eq!((sixth.failures, sixth.locked_until_ms), (6, NOW_MS + 60_000));
    }

    #[test]
    fn a_locked_subject_is_refused_until_the_lock_ends_rounded_up_to_the_second() {
        let stored = LockRecord { failures: 5, locked_until_ms: NOW_MS + 29_001, expires_at: NOW_MS / 1000 + 60 };
        assert_eq!(next_attempt(Some(stored), NOW_MS, BASE), Err(RateLimited { retry_after_seconds: 30 }));
        let almost = LockRecord { locked_until_ms: NOW_MS + 1, ..stored };
        assert_eq!(next_attempt(Some(almost), NOW_MS, BASE), Err(RateLimited { retry_after_seconds: 1 }));
        // The moment it ends, the next attempt is counted (and locks again
        // should it fail, for twice as long).
        let ended = LockRecord { locked_until_ms: NOW_MS, ..stored };
        assert_eq!(next_attempt(Some(ended), NOW_MS, BASE).map(|r| r.locked_until_ms), Ok(NOW_MS + 60_000));
        assert_eq!(locked_at(&ended, NOW_MS), None);
    }

    #[test]
    fn attempts_past_their_memory_count_as_none_even_before_dynamodb_deletes_them() {
        let stale = LockRecord { failures: 9, locked_until_ms: NOW_MS + 600_000, expires_at: NOW_MS / 1000 };
        assert_eq!(next_attempt(Some(stale), NOW_MS, BASE).map(|r| (r.failures, r.locked_until_ms)), Ok((1, 0)));
    }

    #[test]
    fn one_identifier_counts_alike_however_typed() {
        assert_eq!(Subject::login("100 200 300"), Subject::login("100200300"));
        assert_eq!(Subject::login(" Ivanov@Mail.ru"), Subject::login("ivanov@mail.ru"));
    }

    #[test]
    fn subjects_and_actions_keep_the_spellings_of_the_counters_already_stored() {
        let account = AccountNumber::parse("100200300").unwrap();
        let email = Email::parse("ivanov@mail.ru").unwrap();
        assert_eq!(Subject::login("100 200 300").to_string(), "account:100200300");
        assert_eq!(Subject::login("Ivanov@Mail.ru").to_string(), "email:ivanov@mail.ru");
        assert_eq!(Subject::login("  Иванов  ").to_string(), "text:иванов");
        // A mailbox counts under the same spelling as the address typed as
        // a login.
        assert_eq!(Subject::Email(email).to_string(), Subject::login("ivanov@mail.ru").to_string());
        assert_eq!(Subject::ip("203.0.113.7").to_string(), "203.0.113.7");
        assert_eq!(Subject::Account(account.clone()).to_string(), "100200300");
        assert_eq!(Subject::Resident(account.clone()).to_string(), "resident:100200300");
        assert_eq!(Subject::Registration(account).to_string(), "register:100200300");
        assert_eq!(Subject::login("100200300").decoy().to_string(), "decoy:account:100200300");
        let token = crate::domain::SecretToken::from_presented(&"b".repeat(43)).unwrap();
        let hash = token.hash();
        assert_eq!(Subject::Device(hash.clone()).to_string(), format!("device:{}", hash.as_str()));
        let actions = [
            (RESEND_CONFIRMATION, "resend"),
            (CHANGE_EMAIL, "change-email"),
            (CHANGE_CONFIRMED_EMAIL, "account-email"),
            (PASSWORD_RESET, "reset"),
            (REGISTER_PER_ACCOUNT, "register-account"),
            (LOGIN_PER_IP, "login-ip"),
            (REGISTER_PER_IP, "register-ip"),
            (MAIL_PER_IP, "mail-ip"),
            (LETTERS_PER_MAILBOX, "mailbox"),
            (NAME_MISMATCHES_PER_ACCOUNT, "name-mismatch"),
        ];
        for (limit, spelled) in actions {
            assert_eq!(limit.action.as_str(), spelled);
        }
    }
}
