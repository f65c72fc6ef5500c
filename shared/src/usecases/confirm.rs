//! E-mail confirmation: the link's token moves the resident on to
//! identification and queues the job that performs it after the delay.

use time::OffsetDateTime;

use crate::audit::{self, AuditEvent, Entry, Requester};
use crate::clock;
use crate::domain::{ResidentStatus, SecretToken};
use crate::errors::Unexpected;
use crate::queue::IdentificationJob;
use crate::services::Services;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// Confirmed now; the cabinet opens at `ready_at`.
    Now { ready_at: OffsetDateTime },
    /// The link was used before: not an error, just where things stand.
    Already { status: ResidentStatus, ready_at: Option<OffsetDateTime> },
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("the link is not valid")]
    InvalidToken,
    #[error("the link has expired")]
    Expired,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

#[tracing::instrument(skip_all)]
pub async fn confirm(
    services: &Services,
    presented: &str,
    base_url: &str,
    requester: &Requester,
) -> Result<Confirmed, ConfirmError> {
    let token = SecretToken::from_presented(presented).ok_or(ConfirmError::InvalidToken)?;
    let hash = token.hash();
    let record = services.store.confirmation(&hash).await?.ok_or(ConfirmError::InvalidToken)?;
    let resident = services.store.resident(&record.account).await?.ok_or(ConfirmError::InvalidToken)?;
    if resident.status != ResidentStatus::AwaitingEmailConfirmation {
        return Ok(Confirmed::Already { status: resident.status, ready_at: resident.ready_at });
    }
    if resident.confirmation_token_hash.as_deref() != Some(hash.as_str()) {
        // A newer letter replaced this link.
        return Err(ConfirmError::InvalidToken);
    }
    let now = clock::now();
    if record.expires_at <= now.unix_timestamp() {
        return Err(ConfirmError::Expired);
    }
    let ready_at = clock::ceil_to_second(now + services.config.identify_delay);
    let job =
        IdentificationJob { account: resident.account.clone(), not_before: ready_at, base_url: base_url.to_owned() };
    // Queue first: if the status update then fails, the job finds the
    // resident unconfirmed and does nothing, and the link still works.
    services.queue.schedule(&job, now).await?;
    if services.store.confirm_email(&resident.account, &resident.email, &hash, now, ready_at).await? {
        tracing::info!("e-mail confirmed");
        let entry = Entry { account: Some(&resident.account), requester: Some(requester), ..Entry::default() };
        audit::record(services, AuditEvent::EmailConfirmed, entry).await;
        return Ok(Confirmed::Now { ready_at });
    }
    let current = services.store.resident(&resident.account).await?.ok_or(ConfirmError::InvalidToken)?;
    Ok(Confirmed::Already { status: current.status, ready_at: current.ready_at })
}
