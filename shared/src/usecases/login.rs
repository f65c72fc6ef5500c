//! Login: one answer for an unknown login and a wrong password, a growing
//! lock after repeated failures, then the stage the resident is at, or a new
//! session. Sessions end when idle, when too old, at logout and at a
//! password reset.

use time::OffsetDateTime;

use crate::audit::{self, AuditEvent, Entry, Requester};
use crate::clock;
use crate::domain::{Login, LoginForm, RejectionReason, Resident, ResidentStatus, SecretToken, verify_password};
use crate::errors::{Context, Unexpected};
use crate::limits::{self, RateLimited};
use crate::services::Services;
use crate::store::SessionRecord;
use crate::usecases::register::resend_confirmation;

/// A new session: the token goes into the cookie, its hash into DynamoDB.
#[derive(Debug)]
pub struct Session {
    pub token: SecretToken,
    /// The absolute lifetime, for the cookie; the idle timeout may end the
    /// session sooner.
    pub lifetime: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("unknown login or wrong password")]
    InvalidCredentials,
    #[error(transparent)]
    RateLimited(#[from] RateLimited),
    #[error("the e-mail address is not confirmed yet")]
    EmailNotConfirmed { masked_email: String, letter_sent: bool, undeliverable: Option<String> },
    #[error("identification is pending")]
    IdentificationPending { ready_at: Option<OffsetDateTime> },
    #[error("identification failed")]
    IdentificationFailed { reason: RejectionReason },
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

pub async fn find(services: &Services, login: &str) -> Result<Option<Resident>, Unexpected> {
    match Login::parse(login) {
        Some(Login::Email(email)) => services.store.resident_by_email(&email).await,
        Some(Login::Account(account)) => services.store.resident(&account).await,
        None => Ok(None),
    }
}

fn seconds(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Now in milliseconds: locks and session deadlines are kept to the
/// millisecond, so a one-second boundary never shortens them.
fn now_ms() -> i64 {
    i64::try_from(clock::now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Refuses the attempt while `subject` is locked, whatever the password.
async fn refuse_if_locked(services: &Services, subject: &str, now_ms: i64) -> Result<(), LoginError> {
    match services.store.login_locked_until(subject).await? {
        Some(until_ms) if until_ms > now_ms => {
            let seconds = u64::try_from(until_ms - now_ms).unwrap_or(1000).div_ceil(1000).max(1);
            Err(RateLimited { retry_after_seconds: seconds }.into())
        }
        _ => Ok(()),
    }
}

/// Counts a failure and, from the fifth, locks the identifier for a while.
async fn count_failure(services: &Services, subject: &str, now_ms: i64, entry: Entry<'_>) -> Result<(), Unexpected> {
    let forget_at = (now_ms / 1000).saturating_add(seconds(limits::LOGIN_FAILURE_MEMORY));
    let failures = services.store.count_login_failure(subject, forget_at).await?;
    audit::record(services, AuditEvent::LoginFailed, entry).await;
    if let Some(lock) = limits::lock_duration(failures, services.config.login_lock_base) {
        services.store.lock_login(subject, now_ms.saturating_add(millis(lock))).await?;
        tracing::warn!(failures, lock_seconds = lock.as_secs(), "login identifier locked");
        audit::record(services, AuditEvent::Locked, entry).await;
    }
    Ok(())
}

/// Logs in; `previous` is the session cookie the browser still sent, which
/// is revoked (the token changes at every login).
#[tracing::instrument(skip_all)]
pub async fn login(
    services: &Services,
    form: &LoginForm,
    base_url: &str,
    requester: &Requester,
    previous: Option<&str>,
) -> Result<Session, LoginError> {
    let typed = form.login.as_deref().unwrap_or_default();
    let entry = Entry { login: Some(typed), requester: Some(requester), ..Entry::default() };
    limits::check(services, &[(limits::LOGIN_PER_IP, &requester.ip)], entry).await??;
    let subject = limits::login_subject(typed);
    let now = now_ms();
    refuse_if_locked(services, &subject, now).await?;

    let resident = find(services, typed).await?;
    let password = form.password();
    let phc = resident.as_ref().map(|r| r.password_hash.clone());
    // The hash is verified whether or not the login exists, so both take the
    // same time.
    let verified = tokio::task::spawn_blocking(move || verify_password(&password, phc.as_deref()))
        .await
        .context("verifying a password")?;
    let Some(resident) = resident.filter(|_| verified) else {
        tracing::info!("login refused");
        count_failure(services, &subject, now, entry).await?;
        return Err(LoginError::InvalidCredentials);
    };
    services.store.clear_login_failures(&subject).await?;
    let entry = Entry { account: Some(&resident.account), ..entry };
    match resident.status {
        ResidentStatus::AwaitingEmailConfirmation => {
            let masked_email = resident.email.masked();
            let undeliverable = resident.email_undeliverable.as_ref().map(|u| u.message(&masked_email));
            // They are here because the letter did not reach them or its link
            // expired: send a fresh one, unless the address refuses mail.
            let letter_sent = match undeliverable {
                Some(_) => false,
                None => resend_confirmation(services, &resident, base_url).await?,
            };
            Err(LoginError::EmailNotConfirmed { masked_email, letter_sent, undeliverable })
        }
        ResidentStatus::AwaitingIdentification => {
            Err(LoginError::IdentificationPending { ready_at: resident.ready_at })
        }
        ResidentStatus::Rejected => Err(LoginError::IdentificationFailed {
            reason: resident.rejection_reason.unwrap_or(RejectionReason::PayerChanged),
        }),
        ResidentStatus::Active => {
            if let Some(previous) = previous.and_then(SecretToken::from_presented) {
                services.store.delete_session(&previous.hash()).await?;
            }
            let token = SecretToken::generate().context("generating a session token")?;
            let config = &services.config;
            let record = SessionRecord {
                account: resident.account.clone(),
                epoch: resident.session_epoch,
                created_at_ms: now,
                last_seen_ms: now,
                expires_at: expiry(now, now, config),
            };
            services.store.create_session(&token.hash(), &record).await?;
            audit::record(services, AuditEvent::LoginSucceeded, entry).await;
            tracing::info!(account = %resident.account, "logged in");
            Ok(Session { token, lifetime: config.session_lifetime })
        }
    }
}

/// The resident of a live session, and the session's use recorded. `None`
/// when there is no session or it ended: logged out, idle longer than the
/// idle timeout, older than the lifetime, or from before a password reset.
#[tracing::instrument(skip_all)]
pub async fn session_resident(services: &Services, presented: Option<&str>) -> Result<Option<Resident>, Unexpected> {
    let Some(token) = presented.and_then(SecretToken::from_presented) else {
        return Ok(None);
    };
    let Some(session) = services.store.session(&token.hash()).await? else {
        return Ok(None);
    };
    let config = &services.config;
    let now = now_ms();
    let ends = session.created_at_ms.saturating_add(millis(config.session_lifetime));
    let idle_ends = session.last_seen_ms.saturating_add(millis(config.session_idle));
    if now >= ends || now >= idle_ends {
        services.store.delete_session(&token.hash()).await?;
        return Ok(None);
    }
    let Some(resident) = services.store.resident(&session.account).await? else {
        return Ok(None);
    };
    if resident.session_epoch != session.epoch || resident.status != ResidentStatus::Active {
        services.store.delete_session(&token.hash()).await?;
        return Ok(None);
    }
    services.store.touch_session(&token.hash(), now, expiry(session.created_at_ms, now, config)).await?;
    Ok(Some(resident))
}

/// When DynamoDB may delete a session (TTL, in seconds): at the first of its
/// idle and its absolute deadline.
fn expiry(created_ms: i64, last_seen_ms: i64, config: &crate::config::Config) -> i64 {
    let ends = created_ms.saturating_add(millis(config.session_lifetime));
    let idle_ends = last_seen_ms.saturating_add(millis(config.session_idle));
    ends.min(idle_ends).div_euclid(1000).saturating_add(1)
}

#[tracing::instrument(skip_all)]
pub async fn logout(services: &Services, presented: &str, requester: &Requester) -> Result<(), Unexpected> {
    let Some(token) = SecretToken::from_presented(presented) else {
        return Ok(());
    };
    let account = services.store.session(&token.hash()).await?.map(|s| s.account);
    services.store.delete_session(&token.hash()).await?;
    if let Some(account) = &account {
        let entry = Entry { account: Some(account), requester: Some(requester), ..Entry::default() };
        audit::record(services, AuditEvent::LoggedOut, entry).await;
    }
    Ok(())
}
