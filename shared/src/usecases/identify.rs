//! Identification: once the delay has passed, the resident is checked again
//! against the billing data as it is now, and told the outcome by e-mail.

use crate::audit::{self, AuditEvent, Entry};
use crate::clock;
use crate::domain::RejectionReason;
use crate::domain::{Resident, ResidentStatus};
use crate::errors::Unexpected;
use crate::letters;
use crate::queue::IdentificationJob;
use crate::services::Services;
use crate::store::Identification;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identified {
    /// Not due yet: queued again for the rest of the wait.
    Deferred,
    /// Nothing (more) to do: another delivery did it, or the resident is not
    /// awaiting identification.
    Nothing,
    /// Decided now (or letter sent now for an earlier decision).
    Done(Identification),
}

#[tracing::instrument(skip_all, fields(account = %job.account))]
pub async fn identify(services: &Services, job: &IdentificationJob) -> Result<Identified, Unexpected> {
    let now = clock::now();
    if !job.is_due(now) {
        services.queue.schedule(job, now).await?;
        return Ok(Identified::Deferred);
    }
    let Some(resident) = services.store.resident(&job.account).await? else {
        tracing::warn!("identification job for an account with no resident");
        return Ok(Identified::Nothing);
    };
    let outcome = match resident.status {
        ResidentStatus::AwaitingIdentification => {
            let outcome = decide(services, &resident).await?;
            if services.store.finish_identification(&resident.account, outcome, now).await? {
                let (event, detail) = match outcome {
                    Identification::Active => (AuditEvent::Identified, None),
                    Identification::Rejected(RejectionReason::AccountVanished) => {
                        (AuditEvent::IdentificationRejected, Some("account_vanished"))
                    }
                    Identification::Rejected(RejectionReason::PayerChanged) => {
                        (AuditEvent::IdentificationRejected, Some("payer_changed"))
                    }
                };
                audit::record(services, event, Entry { account: Some(&resident.account), detail, ..Entry::default() })
                    .await;
            }
            outcome
        }
        ResidentStatus::Active => Identification::Active,
        ResidentStatus::Rejected => match resident.rejection_reason {
            Some(reason) => Identification::Rejected(reason),
            None => return Ok(Identified::Nothing),
        },
        ResidentStatus::AwaitingEmailConfirmation => return Ok(Identified::Nothing),
    };
    // The decision stands whoever made it; the letter goes out once.
    if !services.store.claim_outcome_letter(&resident.account, now).await? {
        return Ok(Identified::Nothing);
    }
    let letter = match outcome {
        Identification::Active => {
            letters::ready(&resident.email, &resident.account, &format!("{}/login", job.base_url))
        }
        Identification::Rejected(reason) => letters::rejected(&resident.email, &resident.account, reason),
    };
    let sent = match letter {
        Ok(letter) => services.mailer.send(&letter).await,
        Err(e) => Err(e),
    };
    if let Err(error) = sent {
        services.store.release_outcome_letter(&resident.account).await?;
        return Err(error);
    }
    tracing::info!(outcome = ?outcome, "resident identified");
    Ok(Identified::Done(outcome))
}

async fn decide(services: &Services, resident: &Resident) -> Result<Identification, Unexpected> {
    use RejectionReason::{AccountVanished, PayerChanged};
    Ok(match services.store.billing_account(&resident.account).await? {
        None => Identification::Rejected(AccountVanished),
        Some(billing) if !resident.full_name.matches(&billing.full_name) => Identification::Rejected(PayerChanged),
        Some(_) => Identification::Active,
    })
}
