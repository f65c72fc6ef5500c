//! Identification: once the delay has passed, the resident is checked again
//! against the billing data as it is now, and told the outcome by e-mail.

use crate::audit::{self, AuditEvent, Entry};
use crate::clock;
use crate::domain::{AccountInCabinet, BillingAccount, FullName, RejectionReason, ResidentStatus};
use crate::errors::Unexpected;
use crate::letters;
use crate::links::Links;
use crate::queue::IdentificationJob;
use crate::services::Services;
use crate::store::Identification;
use crate::usecases::cabinet::{self, Held};

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

/// How long a claim on the "identified" letter holds before another
/// delivery may take it: far longer than sending takes (the function's
/// timeout is a minute), shorter than the queue's retry interval.
pub const LETTER_CLAIM_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

#[tracing::instrument(skip_all, fields(account = %job.account))]
pub async fn identify(services: &Services, job: &IdentificationJob) -> Result<Identified, Unexpected> {
    let now = clock::now();
    if !job.is_due(now) {
        services.queue.schedule(job, now).await?;
        return Ok(Identified::Deferred);
    }
    let Some(Held { person, account }) = cabinet::holder(services, &job.account).await? else {
        tracing::warn!("identification job for an account in no cabinet");
        return Ok(Identified::Nothing);
    };
    if before_ready(&account, now) {
        // The job of an earlier confirmation (one that lost to an address
        // change): the resident's own job comes at their ready time (and
        // login runs it if it never does).
        tracing::info!("identification job earlier than the resident's ready time: dropped");
        return Ok(Identified::Nothing);
    }
    let stage = account.stage_item();
    let outcome = match account.status {
        ResidentStatus::AwaitingIdentification => {
            let outcome = decide(services, &account).await?;
            if services.store.residents.finish_identification(stage, outcome, now).await? {
                let (event, detail) = match outcome {
                    Identification::Active => (AuditEvent::Identified, None),
                    Identification::Rejected(RejectionReason::AccountVanished) => {
                        (AuditEvent::IdentificationRejected, Some("account_vanished"))
                    }
                    Identification::Rejected(RejectionReason::PayerChanged) => {
                        (AuditEvent::IdentificationRejected, Some("payer_changed"))
                    }
                };
                audit::record(services, event, Entry { account: Some(&account.account), detail, ..Entry::default() })
                    .await;
            }
            outcome
        }
        ResidentStatus::Active => Identification::Active,
        ResidentStatus::Rejected => match account.rejection_reason {
            Some(reason) => Identification::Rejected(reason),
            None => return Ok(Identified::Nothing),
        },
        ResidentStatus::AwaitingEmailConfirmation => return Ok(Identified::Nothing),
    };
    // The decision stands whoever made it; the letter goes out once.
    if !services.store.residents.claim_outcome_letter(stage, now, LETTER_CLAIM_STALE_AFTER).await? {
        return Ok(Identified::Nothing);
    }
    let letter = match outcome {
        Identification::Active => {
            letters::ready(&person.email, &account.account, &Links::new(&job.base_url).login(), account.linked)
        }
        Identification::Rejected(reason) => letters::rejected(&person.email, &account.account, reason, account.linked),
    };
    let sent = match letter {
        Ok(letter) => services.mailer.send(&letter).await,
        Err(e) => Err(e),
    };
    if let Err(error) = sent {
        // Given back so the retry sends it; if this fails too, the claim
        // goes stale and is taken again.
        if let Err(release) = services.store.residents.release_outcome_letter(stage).await {
            tracing::error!(error = %release, "the identification letter's claim could not be given back");
        }
        return Err(error);
    }
    services.store.residents.mark_outcome_letter_sent(stage, now).await?;
    let code = match outcome {
        Identification::Active => "active",
        Identification::Rejected(RejectionReason::AccountVanished) => "account_vanished",
        Identification::Rejected(RejectionReason::PayerChanged) => "payer_changed",
    };
    tracing::info!(metric = crate::metrics::IDENTIFICATIONS, outcome = code, "resident identified");
    Ok(Identified::Done(outcome))
}

/// Whether the resident's identification should have ended a while ago
/// (`Config::identify_overdue` past the ready time). Its job may be gone:
/// retries spent against a failing dependency, it sits in the dead-letter
/// queue, and nobody should be left "pending" forever.
pub fn is_overdue(services: &Services, account: &AccountInCabinet, now: time::OffsetDateTime) -> bool {
    overdue_by(account, services.config.identify_overdue, now)
}

/// Whether `account` still awaits identification `overdue` past its ready
/// time, at `now`.
fn overdue_by(account: &AccountInCabinet, overdue: std::time::Duration, now: time::OffsetDateTime) -> bool {
    account.status == ResidentStatus::AwaitingIdentification
        && account.ready_at.is_some_and(|ready_at| now > ready_at + overdue)
}

/// Whether a due job comes before the account's own ready time: the job of
/// an earlier confirmation (one that lost to an address change).
fn before_ready(account: &AccountInCabinet, now: time::OffsetDateTime) -> bool {
    account.status == ResidentStatus::AwaitingIdentification && account.ready_at.is_some_and(|at| at > now)
}

/// Identifies an account whose job is overdue, now, with the same
/// idempotent steps as the job (a late job or a second caller changes
/// nothing more), and returns it as it stands afterwards. A failure is
/// logged and leaves it as it was: the caller says the check is delayed.
pub async fn catch_up(services: &Services, account: AccountInCabinet, base_url: &str) -> AccountInCabinet {
    if !is_overdue(services, &account, clock::now()) {
        return account;
    }
    tracing::warn!("identification overdue: running it now");
    let Some(ready_at) = account.ready_at else {
        return account;
    };
    let job =
        IdentificationJob { account: account.account.clone(), not_before: ready_at, base_url: base_url.to_owned() };
    if let Err(error) = identify(services, &job).await {
        tracing::error!(error = %error, "overdue identification failed again");
    }
    match cabinet::holder(services, &account.account).await {
        Ok(Some(held)) => held.account,
        Ok(None) => account,
        Err(error) => {
            tracing::error!(error = %error, "reading the account after identification");
            account
        }
    }
}

async fn decide(services: &Services, account: &AccountInCabinet) -> Result<Identification, Unexpected> {
    let billing = services.store.billing.get(&account.account).await?;
    Ok(outcome_for(&account.full_name, billing.as_ref()))
}

/// The outcome for an account claimed by `full_name` against its billing
/// record as it is now: still there with a payer that matches, or why not.
fn outcome_for(full_name: &FullName, billing: Option<&BillingAccount>) -> Identification {
    use RejectionReason::{AccountVanished, PayerChanged};
    match billing {
        None => Identification::Rejected(AccountVanished),
        Some(billing) if !full_name.matches(&billing.full_name) => Identification::Rejected(PayerChanged),
        Some(_) => Identification::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountNumber, Resident};
    use time::macros::datetime;

    const NOW: time::OffsetDateTime = datetime!(2026-11-25 11:05 UTC);

    fn resident(status: ResidentStatus, ready_at: Option<time::OffsetDateTime>) -> AccountInCabinet {
        Resident { ready_at, ..Resident::sample(status, NOW - time::Duration::hours(1)) }.first_account()
    }

    fn billing(payer: &str) -> BillingAccount {
        BillingAccount {
            account: AccountNumber::parse("100200300").unwrap(),
            full_name: FullName::parse(payer).unwrap(),
            address: None,
            balance: None,
            updated_at: NOW,
        }
    }

    #[test]
    fn a_resident_matching_the_payer_on_record_is_identified() {
        let waiting = resident(ResidentStatus::AwaitingIdentification, Some(NOW));
        assert_eq!(outcome_for(&waiting.full_name, Some(&billing("ИВАНОВ иван иванович"))), Identification::Active);
    }

    #[test]
    fn a_vanished_account_or_another_payer_is_rejected_with_its_reason() {
        let waiting = resident(ResidentStatus::AwaitingIdentification, Some(NOW));
        assert_eq!(outcome_for(&waiting.full_name, None), Identification::Rejected(RejectionReason::AccountVanished));
        assert_eq!(
            outcome_for(&waiting.full_name, Some(&billing("Петров Пётр Петрович"))),
            Identification::Rejected(RejectionReason::PayerChanged)
        );
    }

    #[test]
    fn a_job_before_the_residents_own_ready_time_is_an_earlier_confirmations() {
        let later = resident(ResidentStatus::AwaitingIdentification, Some(NOW + time::Duration::SECOND));
        assert!(before_ready(&later, NOW));
        assert!(!before_ready(&resident(ResidentStatus::AwaitingIdentification, Some(NOW)), NOW));
        assert!(!before_ready(&resident(ResidentStatus::Active, Some(NOW + time::Duration::HOUR)), NOW));
    }

    #[test]
    fn identification_is_overdue_only_past_the_grace_after_the_ready_time() {
        let grace = std::time::Duration::from_secs(120);
        let waiting = resident(ResidentStatus::AwaitingIdentification, Some(NOW - time::Duration::seconds(120)));
        assert!(!overdue_by(&waiting, grace, NOW), "exactly at the end of the grace");
        assert!(overdue_by(&waiting, grace, NOW + time::Duration::SECOND));
        let active = resident(ResidentStatus::Active, Some(NOW - time::Duration::HOUR));
        assert!(!overdue_by(&active, grace, NOW));
        assert!(!overdue_by(&resident(ResidentStatus::AwaitingIdentification, None), grace, NOW));
    }
}
