//! E-mail confirmation: the link's token moves the resident on to
//! identification and queues the job that performs it after the delay.

use time::OffsetDateTime;

use crate::audit::{self, AuditEvent, Entry, Requester};
use crate::clock;
use crate::domain::{AccountNumber, Resident, ResidentStatus, SecretToken};
use crate::errors::Unexpected;
use crate::queue::IdentificationJob;
use crate::services::Services;
use crate::store::{Confirmation, ConfirmationRecord};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// Confirmed now; the cabinet opens at `ready_at`.
    Now { ready_at: OffsetDateTime },
    /// The link was used before: not an error, just where things stand.
    Already { status: ResidentStatus, ready_at: Option<OffsetDateTime> },
}

/// Why a confirmation link does not work; each has its own next step.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    /// Not a link we sent (cut short when copied, most likely).
    #[error("the link is not valid")]
    InvalidToken,
    #[error("the link has expired")]
    Expired,
    /// The link went to an address the registration has since left;
    /// `confirmed`: the current one is confirmed already.
    #[error("the address changed after the link was sent")]
    AddressChanged { masked_email: String, confirmed: bool },
    /// The registration was never confirmed and is gone (expired);
    /// `registered_again`: the account has been registered anew since.
    #[error("the registration of the link no longer exists")]
    RegistrationGone { registered_again: bool },
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// Confirms the address with a link from a confirmation letter. Every link
/// sent to the resident's current address works until it expires, however
/// many letters came after it: the one a resident opens first is often an
/// older one. `account` is the account number the link carries besides
/// its token (links sent before it did, or cut short, have none): with it
/// the link and its resident are read in one request.
#[tracing::instrument(skip_all)]
pub async fn confirm(
    services: &Services,
    presented: &str,
    account: Option<&str>,
    base_url: &str,
    requester: &Requester,
) -> Result<Confirmed, ConfirmError> {
    let token = SecretToken::from_presented(presented).ok_or(ConfirmError::InvalidToken)?;
    // The resident is read before anything is queued: a link that confirms
    // nothing (an address left, a registration gone) queues no job. (Reading
    // it inside the transaction's conditions instead saves a round trip, but
    // a probe showed such links queued a job at every open.)
    let (record, resident) = read_link(services, &token, account).await?;
    let record = record.ok_or(ConfirmError::InvalidToken)?;
    let now = clock::now();
    let gone = ConfirmError::RegistrationGone { registered_again: false };
    let resident = resident.ok_or(gone)?;
    if resident.address_nonce != record.address_nonce {
        return Err(moved_on(&resident, &record));
    }
    if resident.status != ResidentStatus::AwaitingEmailConfirmation {
        return Ok(Confirmed::Already { status: resident.status, ready_at: resident.ready_at });
    }
    if record.expires_at <= now.unix_timestamp() {
        return Err(ConfirmError::Expired);
    }
    let confirmation =
        Confirmation { account: &resident.account, email: &resident.email, address_nonce: &record.address_nonce };
    if let Some(ready_at) = apply(services, confirmation, now, base_url, requester).await? {
        return Ok(Confirmed::Now { ready_at });
    }
    // Something changed since the read: another link confirmed it, or the
    // address changed.
    let gone = ConfirmError::RegistrationGone { registered_again: false };
    let current = services.store.residents.get(&resident.account).await?.ok_or(gone)?;
    if current.address_nonce != record.address_nonce {
        return Err(moved_on(&current, &record));
    }
    if current.status == ResidentStatus::AwaitingEmailConfirmation {
        // Nothing that this link depends on changed, yet it did not apply:
        // never answer "confirmed" to a resident who is not.
        return Err(
            Unexpected::new("confirming an e-mail address", std::io::Error::other("the write did not apply")).into()
        );
    }
    Ok(Confirmed::Already { status: current.status, ready_at: current.ready_at })
}

/// The link's record and the resident it belongs to: in one request when
/// the account the link carries is the record's, else in two. The token
/// alone decides whose link it is; an account that is not the record's
/// (edited by hand) costs the second read and changes nothing else.
async fn read_link(
    services: &Services,
    token: &SecretToken,
    account: Option<&str>,
) -> Result<(Option<ConfirmationRecord>, Option<Resident>), Unexpected> {
    let residents = &services.store.residents;
    let hint = account.and_then(|account| AccountNumber::parse(account).ok());
    let (record, resident) = match &hint {
        Some(account) => residents.with_confirmation(&token.hash(), account).await?,
        None => (services.store.tokens.confirmation(&token.hash()).await?, None),
    };
    let Some(record) = record else { return Ok((None, None)) };
    if hint.as_ref() == Some(&record.account) {
        return Ok((Some(record), resident));
    }
    let resident = residents.get(&record.account).await?;
    Ok((Some(record), resident))
}

/// Queues the identification job, then confirms: `Some(ready_at)` when the
/// confirmation applied, `None` when its conditions no longer held.
async fn apply(
    services: &Services,
    confirmation: Confirmation<'_>,
    now: OffsetDateTime,
    base_url: &str,
    requester: &Requester,
) -> Result<Option<OffsetDateTime>, Unexpected> {
    let account = confirmation.account;
    let ready_at = clock::ceil_to_second(now + services.config.identify_delay);
    let job = IdentificationJob { account: account.clone(), not_before: ready_at, base_url: base_url.to_owned() };
    // Queue first: if the status update then fails, the job finds the
    // resident unconfirmed and does nothing, and the link still works.
    services.queue.schedule(&job, now).await?;
    let entry = Entry { account: Some(account), requester: Some(requester), ..Entry::default() };
    let audit = audit::item(services, AuditEvent::EmailConfirmed, entry)?;
    if !services.store.residents.confirm_email(confirmation, now, ready_at, audit).await? {
        return Ok(None);
    }
    tracing::info!(metric = crate::metrics::CONFIRMATIONS, outcome = "confirmed", "e-mail confirmed");
    Ok(Some(ready_at))
}

/// A link whose registration has moved on: to another address, or, when the
/// resident now on the account registered after the link went, to another
/// registration altogether.
fn moved_on(resident: &Resident, record: &ConfirmationRecord) -> ConfirmError {
    if resident.registered_at.unix_timestamp() > record.sent_at || record.address_nonce.is_empty() {
        ConfirmError::RegistrationGone { registered_again: true }
    } else {
        ConfirmError::AddressChanged {
            masked_email: resident.email.masked(),
            confirmed: resident.status != ResidentStatus::AwaitingEmailConfirmation,
        }
    }
}
