//! The resident aggregate: the resident item (`RESIDENT#<account>`), the
//! claims of addresses (`EMAIL#<email>`), and the transactions that change
//! them together with the links they issue or use up.

use aws_sdk_dynamodb::types::{AttributeValue, Update};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::transaction::{Role, Transaction};
use super::{
    AuditItem, ConfirmationRecord, Item, Key, LockRecord, TTL_ATTRIBUTE, Table, TokenRecord, applied, from_item,
    instant, n, s, timestamp, to_item,
};
use crate::domain::{
    AccountNumber, Email, LinkedAccount, RejectionReason, Resident, ResidentStatus, TokenHash, Undeliverable,
};
use crate::errors::{Context, Unexpected};
use crate::limits::Subject;

use std::collections::HashMap;

/// Why a new registration (or an address) was not stored.
#[derive(Debug, thiserror::Error)]
pub enum InsertResidentError {
    #[error("the account already has a resident")]
    AccountTaken,
    #[error("the e-mail address belongs to another resident")]
    EmailTaken,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// The outcome `identify` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identification {
    Active,
    Rejected(RejectionReason),
}

/// The item that keeps an account's identification stage, as it was read:
/// the resident who registered with the account (since `registered_at`),
/// or the account's link to a cabinet (since `linked_at`). Both keep the
/// stage under the same attribute names. Every write of a stage holds only
/// while the item is the one read: a job that read an account which was
/// unlinked and taken by someone else meanwhile writes nothing for them.
#[derive(Debug, Clone, Copy)]
pub enum StageOf<'a> {
    Resident { account: &'a AccountNumber, registered_at: OffsetDateTime },
    Link { account: &'a AccountNumber, linked_at: OffsetDateTime },
}

impl StageOf<'_> {
    fn key(&self) -> Key<'_> {
        match self {
            Self::Resident { account, .. } => Key::Resident(account),
            Self::Link { account, .. } => Key::Link(account),
        }
    }

    /// The attribute that tells this item from a later one under its key,
    /// and its value.
    fn since(&self) -> (&'static str, AttributeValue) {
        match self {
            Self::Resident { registered_at, .. } => ("registered_at", timestamp(*registered_at)),
            Self::Link { linked_at, .. } => ("linked_at", timestamp(*linked_at)),
        }
    }
}

/// The condition that the item is the one a [`StageOf`] was read from.
const SAME_ITEM: &str = "#since = :since";

/// What a confirmation link confirms: the address `email` of the resident
/// of `account`, while they are still at the address the link went to
/// (`address_nonce`).
#[derive(Debug, Clone, Copy)]
pub struct Confirmation<'a> {
    pub account: &'a AccountNumber,
    pub email: &'a Email,
    pub address_nonce: &'a str,
}

/// What [`Residents::for_registration`] read.
#[derive(Debug)]
pub struct RegistrationReads {
    /// The account's registration pause (`LOCK#`), as stored.
    pub pause: Option<LockRecord>,
    /// The resident who registered with the account (live).
    pub resident: Option<Resident>,
    /// The account's link to a cabinet.
    pub link: Option<LinkedAccount>,
    /// The resident whose address `email` is.
    pub email_holder: Option<Resident>,
}

#[derive(Serialize, Deserialize)]
struct EmailClaim {
    account: AccountNumber,
    /// Set while the registration is unconfirmed (TTL, Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

#[derive(Clone)]
pub struct Residents {
    table: Table,
}

impl Residents {
    pub(super) fn new(table: Table) -> Self {
        Self { table }
    }

    fn update_of(&self, account: &AccountNumber) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder().table_name(&self.table.name).key("pk", Key::Resident(account).value())
    }

    /// The resident of `account`; an unconfirmed registration past its
    /// expiry counts as gone even before DynamoDB deletes it.
    #[tracing::instrument(skip_all)]
    pub async fn get(&self, account: &AccountNumber) -> Result<Option<Resident>, Unexpected> {
        let resident: Option<Resident> = self.table.read(&Key::Resident(account)).await?;
        let now = crate::clock::now().unix_timestamp();
        Ok(resident.filter(|r| r.expires_at.is_none_or(|at| at > now)))
    }

    /// The resident of `account` and the account's link to a cabinet, in
    /// one request: an account is held by one or the other.
    #[tracing::instrument(skip_all)]
    pub async fn with_link(
        &self,
        account: &AccountNumber,
    ) -> Result<(Option<Resident>, Option<LinkedAccount>), Unexpected> {
        let (resident, link) = self
            .table
            .read_pair::<Resident, LinkedAccount>(
                &Key::Resident(account),
                &Key::Link(account),
                "reading an account's holder",
            )
            .await?;
        let now = crate::clock::now().unix_timestamp();
        Ok((resident.filter(|r| r.expires_at.is_none_or(|at| at > now)), link))
    }

    /// A confirmation link and the resident of the account the link names,
    /// in one request. The account comes from the link, so it is only a
    /// hint: the caller checks it against the record's.
    #[tracing::instrument(skip_all)]
    pub async fn with_confirmation(
        &self,
        token: &TokenHash,
        account: &AccountNumber,
    ) -> Result<(Option<ConfirmationRecord>, Option<Resident>), Unexpected> {
        let (record, resident) = self
            .table
            .read_pair::<ConfirmationRecord, Resident>(
                &Key::Confirmation(token),
                &Key::Resident(account),
                "reading a confirmation link and its resident",
            )
            .await?;
        let now = crate::clock::now().unix_timestamp();
        Ok((record, resident.filter(|r| r.expires_at.is_none_or(|at| at > now))))
    }

    /// What a registration of `account` under `email` depends on, in one
    /// request: the account's registration pause, who holds the account,
    /// and who holds the address (one more read only when the address is
    /// claimed for another account).
    #[tracing::instrument(skip_all)]
    pub async fn for_registration(
        &self,
        account: &AccountNumber,
        email: &Email,
    ) -> Result<RegistrationReads, Unexpected> {
        let pause = Subject::Registration(account.clone());
        let keys = [Key::Resident(account), Key::Link(account), Key::Email(email), Key::Lock(&pause)];
        let items = keys.iter().map(|key| Item::from([("pk".to_owned(), key.value())])).collect();
        let mut found: HashMap<String, Item> = HashMap::new();
        for item in self.table.batch_get(items, "reading what a registration depends on").await? {
            let pk = item.get("pk").and_then(|pk| pk.as_s().ok()).cloned().unwrap_or_default();
            found.insert(pk, item);
        }
        let mut take = |key: &Key<'_>| found.remove(&key.to_string());
        let now = crate::clock::now().unix_timestamp();
        let live = |r: &Resident| r.expires_at.is_none_or(|at| at > now);
        let resident = take(&keys[0]).map(from_item::<Resident>).transpose()?.filter(live);
        let link = take(&keys[1]).map(from_item::<LinkedAccount>).transpose()?;
        let claim = take(&keys[2]).map(from_item::<EmailClaim>).transpose()?;
        let pause = take(&keys[3]).map(from_item::<LockRecord>).transpose()?;
        let email_holder = match claim {
            None => None,
            Some(claim) if claim.account == *account => resident.clone(),
            Some(claim) => self.get(&claim.account).await?,
        };
        // A claim left by an expired registration may point at an account
        // registered again since, with another address.
        let email_holder = email_holder.filter(|r| r.email == *email);
        Ok(RegistrationReads { pause, resident, link, email_holder })
    }

    /// The account that claims `email`, as the claim says (its resident
    /// may since have another address).
    #[tracing::instrument(skip_all)]
    pub async fn claimed_by(&self, email: &Email) -> Result<Option<AccountNumber>, Unexpected> {
        Ok(self.table.read::<EmailClaim>(&Key::Email(email)).await?.map(|claim| claim.account))
    }

    /// Reads the decoy key, which holds nothing: the read an unknown login
    /// costs, as a known one's resident does.
    #[tracing::instrument(skip_all)]
    pub async fn read_decoy(&self) -> Result<(), Unexpected> {
        self.table.get(&Key::DecoyResident).await.map(|_| ())
    }

    #[tracing::instrument(skip_all)]
    pub async fn by_email(&self, email: &Email) -> Result<Option<Resident>, Unexpected> {
        let Some(item) = self.table.get(&Key::Email(email)).await? else {
            // The same second read as for a known address, so that the time
            // of an answer does not tell whether the address is registered.
            self.table.get(&Key::DecoyResident).await?;
            return Ok(None);
        };
        let claim: EmailClaim = from_item(item)?;
        // A claim left by an expired registration may point at an account
        // registered again since, with another address.
        Ok(self.get(&claim.account).await?.filter(|r| r.email == *email))
    }

    /// Stores a new resident, their e-mail claim and the token of their
    /// status page in one transaction: either all exist afterwards or none
    /// does, and of concurrent registrations of one account or one address
    /// exactly one wins.
    #[tracing::instrument(skip_all)]
    pub async fn insert(
        &self,
        resident: &Resident,
        status_token: &TokenHash,
        status_expires_at: OffsetDateTime,
        confirmation: (&TokenHash, &ConfirmationRecord),
    ) -> Result<(), InsertResidentError> {
        let table = &self.table;
        let status = TokenRecord { account: resident.account.clone(), expires_at: status_expires_at.unix_timestamp() };
        let claim = EmailClaim { account: resident.account.clone(), expires_at: resident.expires_at };
        let now = crate::clock::now().unix_timestamp();
        let transaction = Transaction::default()
            .put_replacing_expired(Role::Resident, table, to_item(&Key::Resident(&resident.account), resident)?, now)?
            .put_replacing_expired(Role::Claim, table, to_item(&Key::Email(&resident.email), &claim)?, now)?
            .put_new(Role::StatusCookie, table, to_item(&Key::Status(status_token), &status)?)?
            .put_new(Role::Link, table, to_item(&Key::Confirmation(confirmation.0), confirmation.1)?)?
            .check_absent_or_expired(Role::AccountHeld, table, &Key::Link(&resident.account), now)?;
        // Of concurrent registrations of one account or address, the one
        // that went first decides the others' answers.
        match transaction.run(table, "storing a new resident").await? {
            Ok(()) => Ok(()),
            Err(refused) if refused.failed(Role::Resident) || refused.failed(Role::AccountHeld) => {
                Err(InsertResidentError::AccountTaken)
            }
            Err(refused) if refused.failed(Role::Claim) => Err(InsertResidentError::EmailTaken),
            Err(_) => {
                Err(Unexpected::new("storing a new resident", std::io::Error::other("a new status token collided"))
                    .into())
            }
        }
    }

    /// Moves a resident from "awaiting e-mail confirmation" to "awaiting
    /// identification", only if they are still at the address the link was
    /// sent under (`address_nonce`). Returns false when that no longer holds
    /// (confirmed already, or the address changed meanwhile).
    ///
    /// The registration stops expiring: the resident and the claim of
    /// `email` lose their `expires_at`, in the same transaction.
    ///
    /// The audit record is stored with the change, in the same transaction.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_email(
        &self,
        confirmation: Confirmation<'_>,
        confirmed_at: OffsetDateTime,
        ready_at: OffsetDateTime,
        audit: AuditItem,
    ) -> Result<bool, Unexpected> {
        let Confirmation { account, email, address_nonce } = confirmation;
        let table = &self.table;
        // Registrations stored before address nonces existed have none.
        let same_address =
            if address_nonce.is_empty() { "attribute_not_exists(address_nonce)" } else { "address_nonce = :nonce" };
        let mut resident = self
            .update_of(account)
            .condition_expression(format!(
                "#status = :awaiting AND {same_address} AND email = :email AND (attribute_not_exists(#ttl) OR #ttl > :now)",
            ))
            .update_expression("SET #status = :next, confirmed_at = :confirmed_at, ready_at = :ready_at REMOVE #ttl")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":awaiting", s(ResidentStatus::AwaitingEmailConfirmation.as_str()))
            .expression_attribute_values(":email", s(email.as_str()))
            .expression_attribute_values(":now", n(confirmed_at.unix_timestamp()))
            .expression_attribute_values(":next", s(ResidentStatus::AwaitingIdentification.as_str()))
            .expression_attribute_values(":confirmed_at", timestamp(confirmed_at))
            .expression_attribute_values(":ready_at", timestamp(ready_at));
        if !address_nonce.is_empty() {
            resident = resident.expression_attribute_values(":nonce", s(address_nonce));
        }
        let resident = resident.build().context("building a confirmation")?;
        let claim = Update::builder()
            .table_name(&table.name)
            .key("pk", Key::Email(email).value())
            .condition_expression("account = :account")
            .update_expression("REMOVE #ttl")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":account", s(account.as_str()))
            .build()
            .context("building a confirmation")?;
        let transaction =
            Transaction::default().update(Role::Resident, resident).update(Role::Claim, claim).audit(audit)?;
        Ok(transaction.run(table, "confirming an e-mail address").await?.is_ok())
    }

    /// Moves an unconfirmed resident to another address: the resident's
    /// e-mail and address nonce (so links sent to the old address stop
    /// working), the release of the old address and the claim of the new
    /// one, in one transaction. False when the resident is no longer
    /// unconfirmed at `old`.
    #[tracing::instrument(skip_all)]
    pub async fn change_unconfirmed_email(
        &self,
        account: &AccountNumber,
        old: &Email,
        new: &Email,
        address_nonce: &str,
        registration_expires_at: Option<i64>,
    ) -> Result<bool, InsertResidentError> {
        let table = &self.table;
        let update = self
            .update_of(account)
            .condition_expression("#status = :awaiting AND email = :old")
            .update_expression("SET email = :new, address_nonce = :nonce REMOVE email_undeliverable")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":awaiting", s(ResidentStatus::AwaitingEmailConfirmation.as_str()))
            .expression_attribute_values(":old", s(old.as_str()))
            .expression_attribute_values(":new", s(new.as_str()))
            .expression_attribute_values(":nonce", s(address_nonce))
            .build()
            .context("building an address change")?;
        let claim = EmailClaim { account: account.clone(), expires_at: registration_expires_at };
        let now = crate::clock::now().unix_timestamp();
        let transaction = Transaction::default()
            .update(Role::Resident, update)
            .delete(Role::ReleasedClaim, table, &Key::Email(old), false)?
            .put_replacing_expired(Role::Claim, table, to_item(&Key::Email(new), &claim)?, now)?;
        // The resident first: when they are no longer at `old`, a request
        // like this one (a double submit) got there first, and the claim of
        // `new` failing is theirs, not another cabinet's.
        match transaction.run(table, "changing an e-mail address").await? {
            Ok(()) => Ok(true),
            Err(refused) if refused.failed(Role::Resident) => Ok(false),
            Err(_) => Err(InsertResidentError::EmailTaken),
        }
    }

    /// Puts a resident whose account changed payer back to "awaiting
    /// identification", once per new payer. False when there is nothing to
    /// suspend (no active resident, or already suspended for this payer).
    #[tracing::instrument(skip_all)]
    pub async fn suspend(
        &self,
        stage: StageOf<'_>,
        new_payer: &str,
        ready_at: OffsetDateTime,
    ) -> Result<bool, Unexpected> {
        let result = self
            .stage_update(stage)
            .condition_expression(format!(
                "{SAME_ITEM} AND #status IN (:active, :awaiting) AND (attribute_not_exists(suspended_for) OR suspended_for <> :payer)",
            ))
            .update_expression(
                "SET #status = :awaiting, ready_at = :ready_at, suspended_for = :payer REMOVE outcome_letter_claimed_at, outcome_letter_claim, outcome_letter_sent_at, outcome_letter_at, identified_at, rejection_reason",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s(ResidentStatus::Active.as_str()))
            .expression_attribute_values(":awaiting", s(ResidentStatus::AwaitingIdentification.as_str()))
            .expression_attribute_values(":payer", s(new_payer))
            .expression_attribute_values(":ready_at", timestamp(ready_at))
            .send()
            .await;
        applied(result, "suspending a resident")
    }

    /// Records the outcome of identification, only if the resident is still
    /// awaiting it; false means another delivery of the job got there first.
    #[tracing::instrument(skip_all)]
    pub async fn finish_identification(
        &self,
        stage: StageOf<'_>,
        outcome: Identification,
        at: OffsetDateTime,
    ) -> Result<bool, Unexpected> {
        let mut update = self
            .stage_update(stage)
            .condition_expression(format!("{SAME_ITEM} AND #status = :awaiting"))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":awaiting", s(ResidentStatus::AwaitingIdentification.as_str()))
            .expression_attribute_values(":at", timestamp(at));
        update = match outcome {
            Identification::Active => update
                .update_expression("SET #status = :next, identified_at = :at")
                .expression_attribute_values(":next", s(ResidentStatus::Active.as_str())),
            Identification::Rejected(reason) => update
                .update_expression("SET #status = :next, identified_at = :at, rejection_reason = :reason")
                .expression_attribute_values(":next", s(ResidentStatus::Rejected.as_str()))
                .expression_attribute_values(
                    ":reason",
                    serde_dynamo::to_attribute_value(reason).context("mapping a rejection reason")?,
                ),
        };
        applied(update.send().await, "recording identification")
    }

    /// Claims the right to send the "identified" letter until it is marked
    /// sent; only one delivery of a duplicated job gets it. A claim older
    /// than `stale_after` can be taken again: its sender died, or failed and
    /// could not give it back ([`Residents::release_outcome_letter`]), and the
    /// letter must not be lost.
    ///
    /// Each claim carries an id of its own: when the condition fails, the
    /// claim found may be this very call's, taken by an attempt whose
    /// answer was lost (the SDK sent the call again), and then it is ours.
    #[tracing::instrument(skip_all)]
    pub async fn claim_outcome_letter(
        &self,
        stage: StageOf<'_>,
        at: OffsetDateTime,
        stale_after: std::time::Duration,
    ) -> Result<bool, Unexpected> {
        let stale = at.unix_timestamp().saturating_sub(i64::try_from(stale_after.as_secs()).unwrap_or(i64::MAX));
        let claim = uuid::Uuid::new_v4().simple().to_string();
        let result = self
            .stage_update(stage)
            // Claims stored before instants were strings are numbers of
            // seconds, compared as such.
            .condition_expression(format!(
                "{SAME_ITEM} AND attribute_not_exists(outcome_letter_sent_at) \
                 AND (attribute_not_exists(outcome_letter_claimed_at) \
                 OR (attribute_type(outcome_letter_claimed_at, :text) AND outcome_letter_claimed_at < :stale) \
                 OR (attribute_type(outcome_letter_claimed_at, :number) AND outcome_letter_claimed_at < :stale_seconds))",
            ))
            .update_expression("SET outcome_letter_claimed_at = :at, outcome_letter_claim = :claim")
            .expression_attribute_values(":at", instant::value_seconds(at.unix_timestamp()))
            .expression_attribute_values(":stale", instant::value_seconds(stale))
            .expression_attribute_values(":stale_seconds", n(stale))
            .expression_attribute_values(":text", s("S"))
            .expression_attribute_values(":number", s("N"))
            .expression_attribute_values(":claim", s(claim.as_str()))
            .send()
            .await;
        if applied(result, "claiming the identification letter")? {
            return Ok(true);
        }
        let Some(item) = self.table.get(&stage.key()).await? else {
            return Ok(false);
        };
        let ours = item.get("outcome_letter_claim").and_then(|c| c.as_s().ok()).is_some_and(|c| *c == claim);
        Ok(ours && !item.contains_key("outcome_letter_sent_at"))
    }

    /// The "identified" letter went: no claim is taken again. Nothing when
    /// the item is gone or another since (an unlink meanwhile): an update
    /// must never bring back an item without its owner.
    #[tracing::instrument(skip_all)]
    pub async fn mark_outcome_letter_sent(&self, stage: StageOf<'_>, at: OffsetDateTime) -> Result<(), Unexpected> {
        let update = self
            .stage_update(stage)
            .condition_expression(SAME_ITEM)
            .update_expression("SET outcome_letter_sent_at = :at")
            .expression_attribute_values(":at", instant::value_seconds(at.unix_timestamp()));
        applied(update.send().await, "marking the identification letter sent").map(|_| ())
    }

    /// Gives the letter's claim back (its sending failed), on the same item.
    #[tracing::instrument(skip_all)]
    pub async fn release_outcome_letter(&self, stage: StageOf<'_>) -> Result<(), Unexpected> {
        let update = self
            .stage_update(stage)
            .condition_expression(SAME_ITEM)
            .update_expression("REMOVE outcome_letter_claimed_at, outcome_letter_claim");
        applied(update.send().await, "releasing the identification letter").map(|_| ())
    }

    /// An update of the item of `stage`, with `#since` and `:since` bound
    /// for [`SAME_ITEM`].
    fn stage_update(
        &self,
        stage: StageOf<'_>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let (name, value) = stage.since();
        self.table
            .update(&stage.key())
            .expression_attribute_names("#since", name)
            .expression_attribute_values(":since", value)
    }

    /// Marks the address `email` as not taking mail (a hard bounce or a
    /// complaint). Returns the resident it belongs to, if any.
    #[tracing::instrument(skip_all)]
    pub async fn mark_undeliverable(
        &self,
        email: &Email,
        mark: &Undeliverable,
    ) -> Result<Option<AccountNumber>, Unexpected> {
        let Some(item) = self.table.get(&Key::Email(email)).await? else {
            return Ok(None);
        };
        let claim: EmailClaim = from_item(item)?;
        let result = self
            .table
            .update(&Key::Resident(&claim.account))
            .condition_expression("email = :email")
            .update_expression("SET email_undeliverable = :mark")
            .expression_attribute_values(":email", s(email.as_str()))
            .expression_attribute_values(
                ":mark",
                AttributeValue::M(serde_dynamo::to_item(mark).context("mapping an undeliverable mark")?),
            )
            .send()
            .await;
        Ok(applied(result, "marking an address undeliverable")?.then_some(claim.account))
    }

    /// Gives a confirmed resident a password reset token (the newest one is
    /// the only one that works) and stores the token's record, in one
    /// transaction. False when the resident has not confirmed an address.
    #[tracing::instrument(skip_all)]
    pub async fn issue_reset_token(
        &self,
        account: &AccountNumber,
        token: &TokenHash,
        expires_at: OffsetDateTime,
    ) -> Result<bool, Unexpected> {
        let table = &self.table;
        let update = self
            .update_of(account)
            .condition_expression("attribute_exists(pk) AND #status <> :unconfirmed")
            .update_expression("SET reset_token_hash = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":unconfirmed", s(ResidentStatus::AwaitingEmailConfirmation.as_str()))
            .expression_attribute_values(":token", s(token.as_str()))
            .build()
            .context("building a reset token update")?;
        let record = TokenRecord { account: account.clone(), expires_at: expires_at.unix_timestamp() };
        let transaction = Transaction::default().update(Role::Resident, update).put_new(
            Role::Link,
            table,
            to_item(&Key::Reset(token), &record)?,
        )?;
        Ok(transaction.run(table, "issuing a reset token").await?.is_ok())
    }

    /// Puts back the reset link that `token` replaced, when the letter with
    /// `token` never went: the earlier link, which did, keeps working. Only
    /// if nothing replaced `token` meanwhile.
    #[tracing::instrument(skip_all)]
    pub async fn restore_reset_token(
        &self,
        account: &AccountNumber,
        token: &TokenHash,
        previous: Option<&str>,
    ) -> Result<(), Unexpected> {
        let update = self
            .table
            .update(&Key::Resident(account))
            .condition_expression("reset_token_hash = :token")
            .expression_attribute_values(":token", s(token.as_str()));
        let update = match previous {
            Some(previous) => update
                .update_expression("SET reset_token_hash = :previous")
                .expression_attribute_values(":previous", s(previous)),
            None => update.update_expression("REMOVE reset_token_hash"),
        };
        applied(update.send().await, "restoring a reset link").map(|_| ())
    }

    /// Sets a new password with a reset token, once: the token record is
    /// deleted and the resident's sessions end (their epoch moves on), in one
    /// transaction, only while `token` is the resident's newest reset token.
    /// False when it is not (used already, or a newer one was sent).
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(
        &self,
        account: &AccountNumber,
        token: &TokenHash,
        password_hash: &str,
    ) -> Result<bool, Unexpected> {
        let table = &self.table;
        let update = self
            .update_of(account)
            .condition_expression("reset_token_hash = :token")
            .update_expression("SET password_hash = :phc REMOVE reset_token_hash ADD session_epoch :one")
            .expression_attribute_values(":token", s(token.as_str()))
            .expression_attribute_values(":phc", s(password_hash))
            .expression_attribute_values(":one", n(1))
            .build()
            .context("building a password update")?;
        let transaction = Transaction::default().update(Role::Resident, update).delete(
            Role::Link,
            table,
            &Key::Reset(token),
            true,
        )?;
        // Either condition failing means the link is no longer the newest
        // (used, or another sent since); a conflict is no such answer.
        Ok(transaction.run(table, "resetting a password").await?.is_ok())
    }

    /// "Not me" after the change was applied: the resident's address goes
    /// back to the old one (its claim taken again, the new one released),
    /// every reset link dies and every session ends, and the cancel link is
    /// used up, in one transaction. `Ok(false)` when the link was used or
    /// the address changed again since; `EmailTaken` when the old address
    /// has been claimed by someone else meanwhile.
    #[tracing::instrument(skip_all)]
    pub async fn revert_email_change(
        &self,
        change: &super::EmailChangeRecord,
        cancel: &TokenHash,
    ) -> Result<bool, InsertResidentError> {
        let update = self
            .update_of(&change.account)
            .condition_expression("email = :new")
            .update_expression("SET email = :old REMOVE email_undeliverable, reset_token_hash ADD session_epoch :one")
            .expression_attribute_values(":old", s(change.old_email.as_str()))
            .expression_attribute_values(":new", s(change.new_email.as_str()))
            .expression_attribute_values(":one", n(1))
            .build()
            .context("building an address revert")?;
        let (account, from, to) = (&change.account, &change.new_email, &change.old_email);
        self.move_email_claim(update, account, from, to, &Key::Cancel(cancel), "reverting an address change").await
    }

    /// The resident said "not me" to an address change: every pending change
    /// and reset link dies and every session ends (the epoch moves on), and
    /// the cancel link is used up, in one transaction. False when the link
    /// was used already.
    #[tracing::instrument(skip_all)]
    pub async fn cancel_email_changes(&self, account: &AccountNumber, cancel: &TokenHash) -> Result<bool, Unexpected> {
        let table = &self.table;
        let update = self
            .update_of(account)
            .condition_expression("attribute_exists(pk)")
            .update_expression("REMOVE reset_token_hash ADD session_epoch :one")
            .expression_attribute_values(":one", n(1))
            .build()
            .context("building a cancellation")?;
        let transaction = Transaction::default().update(Role::Resident, update).delete(
            Role::Link,
            table,
            &Key::Cancel(cancel),
            true,
        )?;
        Ok(transaction.run(table, "cancelling address changes").await?.is_ok())
    }

    /// Moves a confirmed resident to the new address of `change`, once: the
    /// resident's address (and its undeliverable mark cleared), the release
    /// of the old claim, the claim of the new one and the use of the token,
    /// in one transaction. False when the token was used or the resident's
    /// address changed meanwhile.
    #[tracing::instrument(skip_all)]
    pub async fn apply_email_change(
        &self,
        token: &TokenHash,
        change: &super::EmailChangeRecord,
    ) -> Result<bool, InsertResidentError> {
        let update = self
            .update_of(&change.account)
            // A reset or a cancellation since the request ends it; reset
            // links sent to the old address stop working.
            .condition_expression("email = :old AND session_epoch = :epoch")
            .update_expression("SET email = :new REMOVE email_undeliverable, reset_token_hash")
            .expression_attribute_values(":old", s(change.old_email.as_str()))
            .expression_attribute_values(":new", s(change.new_email.as_str()))
            .expression_attribute_values(":epoch", n(i64::try_from(change.epoch).unwrap_or(i64::MAX)))
            .build()
            .context("building an address change")?;
        let (account, from, to) = (&change.account, &change.old_email, &change.new_email);
        self.move_email_claim(update, account, from, to, &Key::EmailChange(token), "changing a confirmed address").await
    }

    /// One transaction: the resident's `update`, the release of the claim
    /// of `from`, the claim of `to` (unless someone else holds it) and the
    /// use of the link `link`. `Ok(false)` when a condition other than
    /// the claim failed (the link was used, the resident changed).
    async fn move_email_claim(
        &self,
        update: Update,
        account: &AccountNumber,
        from: &Email,
        to: &Email,
        link: &Key<'_>,
        what: &'static str,
    ) -> Result<bool, InsertResidentError> {
        let table = &self.table;
        let claim = EmailClaim { account: account.clone(), expires_at: None };
        let now = crate::clock::now().unix_timestamp();
        let transaction = Transaction::default()
            .update(Role::Resident, update)
            .delete(Role::ReleasedClaim, table, &Key::Email(from), false)?
            .put_replacing_expired(Role::Claim, table, to_item(&Key::Email(to), &claim)?, now)?
            .delete(Role::Link, table, link, true)?;
        // The resident and the link first: when either no longer holds, a
        // request like this one (the same link opened twice) got there first.
        match transaction.run(table, what).await? {
            Ok(()) => Ok(true),
            Err(refused) if refused.failed(Role::Resident) || refused.failed(Role::Link) => Ok(false),
            Err(_) => Err(InsertResidentError::EmailTaken),
        }
    }
}
