//! DynamoDB adapter: residents, their e-mail claims, confirmation tokens and
//! sessions in one table; the billing accounts in another. Item mapping lives
//! here and only here.
//!
//! Keys of the residents table (`pk`):
//! - `RESIDENT#<account>`: the resident; one per account number.
//! - `EMAIL#<email>`: claims an address; one resident per address.
//! - `CONFIRM#<sha256>`: a confirmation token; expires through TTL.
//! - `SESSION#<sha256>`: a login session; expires through TTL.
//! - `RESET#<sha256>`: a password reset token; expires through TTL.
//! - `NEWEMAIL#<sha256>`: a pending change of a confirmed address; expires
//!   through TTL.
//! - `STATUS#<sha256>`: the registration status cookie's token; expires
//!   through TTL.
//! - `RATE#<action>#<subject>#<window>`: a rate limit counter.
//! - `LOCK#<subject>`: login failures of one login identifier and the lock
//!   they earned.
//! - `AUDIT#<account or ->#<time>#<id>`: a security event; expires after
//!   the retention period.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, PutRequest, TransactWriteItem, Update, WriteRequest,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{
    AccountNumber, BillingAccount, Email, RejectionReason, Resident, ResidentStatus, TokenHash, Undeliverable,
};
use crate::errors::{Context, Unexpected};

use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// Most tries of one batch before the import gives up (and is retried whole).
const MAX_BATCH_ATTEMPTS: u32 = 10;

/// Waits before retrying throttled work: 50 ms doubling up to 5 s, with
/// full jitter so parallel writers do not retry in step.
async fn backoff(attempt: u32) -> Result<(), Unexpected> {
    if attempt >= MAX_BATCH_ATTEMPTS {
        return Err(Unexpected::new("DynamoDB kept items unprocessed", std::io::Error::other("too many retries")));
    }
    let ceiling = 50u64.saturating_mul(1 << attempt.min(7)).min(5_000);
    let jitter = getrandom::u64().unwrap_or(0) % (ceiling + 1);
    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
    Ok(())
}

/// TTL attribute of the residents table, as declared in template.yaml.
pub const TTL_ATTRIBUTE: &str = "expires_at";

#[derive(Clone)]
pub struct Store {
    client: Client,
    residents_table: String,
    billing_table: String,
}

/// Why a new registration was not stored.
#[derive(Debug, thiserror::Error)]
pub enum InsertResidentError {
    #[error("the account already has a resident")]
    AccountTaken,
    #[error("the e-mail address belongs to another resident")]
    EmailTaken,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// A token of a link or cookie as stored (confirmation, reset, status): whose
/// it is and until when (Unix seconds, also the TTL).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub account: AccountNumber,
    pub expires_at: i64,
}

#[derive(Serialize)]
struct Keyed<'a, T: Serialize> {
    pk: String,
    #[serde(flatten)]
    item: &'a T,
}

#[derive(Serialize, Deserialize)]
struct EmailClaim {
    account: AccountNumber,
}

/// A login session as stored. It ends at the first of: idle too long
/// (`last_seen_ms` + idle), too old (`created_at_ms` + lifetime), logout, or a
/// password reset (the resident's `session_epoch` moves past `epoch`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub account: AccountNumber,
    #[serde(default)]
    pub epoch: u64,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
    /// TTL (seconds): DynamoDB removes the item some time after this.
    pub expires_at: i64,
}

/// A pending change of a confirmed address, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmailChangeRecord {
    pub account: AccountNumber,
    /// The address the resident had when asking (the change applies only
    /// if it is still theirs).
    pub old_email: Email,
    pub new_email: Email,
    pub expires_at: i64,
}

/// The outcome `identify` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identification {
    Active,
    Rejected(RejectionReason),
}

fn resident_key(account: &AccountNumber) -> String {
    format!("RESIDENT#{account}")
}

fn email_key(email: &Email) -> String {
    format!("EMAIL#{email}")
}

fn confirmation_key(hash: &TokenHash) -> String {
    format!("CONFIRM#{}", hash.as_str())
}

fn session_key(hash: &TokenHash) -> String {
    format!("SESSION#{}", hash.as_str())
}

fn reset_key(hash: &TokenHash) -> String {
    format!("RESET#{}", hash.as_str())
}

fn email_change_key(hash: &TokenHash) -> String {
    format!("NEWEMAIL#{}", hash.as_str())
}

fn status_key(hash: &TokenHash) -> String {
    format!("STATUS#{}", hash.as_str())
}

fn lock_key(subject: &str) -> String {
    format!("LOCK#{subject}")
}

fn pk(value: String) -> AttributeValue {
    AttributeValue::S(value)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn timestamp(at: OffsetDateTime) -> AttributeValue {
    s(at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
}

fn to_item<T: Serialize>(key: String, value: &T) -> Result<Item, Unexpected> {
    serde_dynamo::to_item(Keyed { pk: key, item: value }).context("mapping an item for DynamoDB")
}

fn from_item<T: for<'de> Deserialize<'de>>(item: Item) -> Result<T, Unexpected> {
    serde_dynamo::from_item(item).context("reading an item from DynamoDB")
}

/// The update that gives a resident still awaiting e-mail confirmation a
/// new confirmation token, and with `address` also moves them from the old
/// address to the new one (only if they are still at the old one).
fn unconfirmed_token_update(
    table: &str,
    account: &AccountNumber,
    token: &TokenHash,
    address: Option<(&Email, &Email)>,
) -> Result<Update, Unexpected> {
    let mut update = Update::builder()
        .table_name(table)
        .key("pk", pk(resident_key(account)))
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":awaiting", s(ResidentStatus::AwaitingEmailConfirmation.as_str()))
        .expression_attribute_values(":token", s(token.as_str()));
    update = match address {
        None => {
            update.condition_expression("#status = :awaiting").update_expression("SET confirmation_token_hash = :token")
        }
        Some((old, new)) => update
            .condition_expression("#status = :awaiting AND email = :old")
            .update_expression("SET email = :new, confirmation_token_hash = :token REMOVE email_undeliverable")
            .expression_attribute_values(":old", s(old.as_str()))
            .expression_attribute_values(":new", s(new.as_str())),
    };
    update.build().context("building a confirmation token update")
}

fn put(table: &str, item: Item, only_if_new: bool) -> Result<TransactWriteItem, Unexpected> {
    let mut put = Put::builder().table_name(table).set_item(Some(item));
    if only_if_new {
        put = put.condition_expression("attribute_not_exists(pk)");
    }
    let put = put.build().context("building a transactional put")?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A transactional delete of `key`; with `must_exist`, the transaction fails
/// when the item is gone (a token used by someone else first).
fn delete(table: &str, key: String, must_exist: bool) -> Result<TransactWriteItem, Unexpected> {
    let mut delete = aws_sdk_dynamodb::types::Delete::builder().table_name(table).key("pk", pk(key));
    if must_exist {
        delete = delete.condition_expression("attribute_exists(pk)");
    }
    let delete = delete.build().context("building a transactional delete")?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// The reason codes of a cancelled transaction, one per item in order
/// (`ConditionalCheckFailed`, `TransactionConflict`, `None`, ...); `None`
/// when the error is something else.
fn cancellation_codes(error: &SdkError<TransactWriteItemsError>) -> Option<Vec<String>> {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            Some(cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or_default().to_owned()).collect())
        }
        _ => None,
    }
}

const CONDITION_FAILED: &str = "ConditionalCheckFailed";

fn condition_failed(error: &SdkError<UpdateItemError>) -> bool {
    matches!(error.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_)))
}

/// The outcome of a conditional update: true when it applied, false when
/// its condition did not hold.
fn applied<T>(result: Result<T, SdkError<UpdateItemError>>, context: &'static str) -> Result<bool, Unexpected> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if condition_failed(&e) => Ok(false),
        Err(e) => Err(Unexpected::new(context, e)),
    }
}

impl Store {
    pub fn new(client: Client, residents_table: impl Into<String>, billing_table: impl Into<String>) -> Self {
        Self { client, residents_table: residents_table.into(), billing_table: billing_table.into() }
    }

    async fn get(&self, table: &str, key_name: &str, key: String) -> Result<Option<Item>, Unexpected> {
        let output = self
            .client
            .get_item()
            .table_name(table)
            .key(key_name, pk(key))
            .consistent_read(true)
            .send()
            .await
            .context("reading an item from DynamoDB")?;
        Ok(output.item)
    }

    /// An item of the residents table, mapped.
    async fn read<T: for<'de> Deserialize<'de>>(&self, key: String) -> Result<Option<T>, Unexpected> {
        let item = self.get(&self.residents_table, "pk", key).await?;
        item.map(from_item).transpose()
    }

    #[tracing::instrument(skip_all)]
    pub async fn billing_account(&self, account: &AccountNumber) -> Result<Option<BillingAccount>, Unexpected> {
        let item = self.get(&self.billing_table, "account", account.to_string()).await?;
        item.map(from_item).transpose()
    }

    #[tracing::instrument(skip_all)]
    pub async fn put_billing_account(&self, account: &BillingAccount) -> Result<(), Unexpected> {
        let item = serde_dynamo::to_item(account).context("mapping a billing account")?;
        self.client
            .put_item()
            .table_name(&self.billing_table)
            .set_item(Some(item))
            .send()
            .await
            .context("storing a billing account")?;
        Ok(())
    }

    /// Up to 100 billing accounts in one request (retrying unprocessed keys).
    #[tracing::instrument(skip_all, fields(count = accounts.len()))]
    pub async fn billing_accounts(
        &self,
        accounts: &[AccountNumber],
    ) -> Result<HashMap<String, BillingAccount>, Unexpected> {
        let mut found = HashMap::new();
        if accounts.is_empty() {
            return Ok(found);
        }
        let keys: Vec<Item> = accounts.iter().map(|a| HashMap::from([("account".to_owned(), s(a.as_str()))])).collect();
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .context("building a batch read")?,
        );
        let mut attempt = 0;
        while let Some(keys) = request.take() {
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.billing_table, keys)
                .send()
                .await
                .context("reading billing accounts")?;
            for item in output.responses.and_then(|mut r| r.remove(&self.billing_table)).unwrap_or_default() {
                let account: BillingAccount = from_item(item)?;
                found.insert(account.account.to_string(), account);
            }
            request = output
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.billing_table))
                .filter(|k| !k.keys().is_empty());
            if request.is_some() {
                attempt += 1;
                backoff(attempt).await?;
            }
        }
        Ok(found)
    }

    /// Writes up to 25 billing accounts in one request, retrying what
    /// DynamoDB leaves unprocessed with exponential backoff and jitter.
    #[tracing::instrument(skip_all, fields(count = accounts.len()))]
    pub async fn put_billing_accounts(&self, accounts: &[BillingAccount]) -> Result<(), Unexpected> {
        let mut writes = Vec::with_capacity(accounts.len());
        for account in accounts {
            let item = serde_dynamo::to_item(account).context("mapping a billing account")?;
            let put = PutRequest::builder().set_item(Some(item)).build().context("building a batch write")?;
            writes.push(WriteRequest::builder().put_request(put).build());
        }
        let mut attempt = 0;
        while !writes.is_empty() {
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.billing_table, writes)
                .send()
                .await
                .context("writing billing accounts")?;
            writes = output.unprocessed_items.and_then(|mut u| u.remove(&self.billing_table)).unwrap_or_default();
            if !writes.is_empty() {
                attempt += 1;
                backoff(attempt).await?;
            }
        }
        Ok(())
    }

    /// Puts a resident whose account changed payer back to "awaiting
    /// identification", once per new payer. False when there is nothing to
    /// suspend (no active resident, or already suspended for this payer).
    #[tracing::instrument(skip_all)]
    pub async fn suspend_resident(
        &self,
        account: &AccountNumber,
        new_payer: &str,
        ready_at: OffsetDateTime,
    ) -> Result<bool, Unexpected> {
        let result = self
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(resident_key(account)))
            .condition_expression(
                "#status IN (:active, :awaiting) AND (attribute_not_exists(suspended_for) OR suspended_for <> :payer)",
            )
            .update_expression(
                "SET #status = :awaiting, ready_at = :ready_at, suspended_for = :payer REMOVE outcome_letter_at, identified_at, rejection_reason",
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

    #[tracing::instrument(skip_all)]
    pub async fn resident(&self, account: &AccountNumber) -> Result<Option<Resident>, Unexpected> {
        self.read(resident_key(account)).await
    }

    #[tracing::instrument(skip_all)]
    pub async fn resident_by_email(&self, email: &Email) -> Result<Option<Resident>, Unexpected> {
        let Some(item) = self.get(&self.residents_table, "pk", email_key(email)).await? else {
            // The same second read as for a known address, so that the time
            // of an answer does not tell whether the address is registered.
            self.get(&self.residents_table, "pk", "RESIDENT#-".to_owned()).await?;
            return Ok(None);
        };
        let claim: EmailClaim = from_item(item)?;
        self.resident(&claim.account).await
    }

    /// Stores a new resident, their e-mail claim, their confirmation token and
    /// the token of their status page in one transaction: either all exist
    /// afterwards or none does, and of concurrent registrations of one
    /// account or one address exactly one wins.
    #[tracing::instrument(skip_all)]
    pub async fn insert_resident(
        &self,
        resident: &Resident,
        token: &TokenHash,
        status_token: &TokenHash,
        token_expires_at: OffsetDateTime,
    ) -> Result<(), InsertResidentError> {
        let table = &self.residents_table;
        let confirmation =
            TokenRecord { account: resident.account.clone(), expires_at: token_expires_at.unix_timestamp() };
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .transact_write_items()
                .transact_items(put(table, to_item(resident_key(&resident.account), resident)?, true)?)
                .transact_items(put(
                    table,
                    to_item(email_key(&resident.email), &EmailClaim { account: resident.account.clone() })?,
                    true,
                )?)
                .transact_items(put(table, to_item(confirmation_key(token), &confirmation)?, true)?)
                .transact_items(put(table, to_item(status_key(status_token), &confirmation)?, true)?)
                .send()
                .await;
            let Err(error) = result else {
                return Ok(());
            };
            if let Some(codes) = cancellation_codes(&error) {
                if codes.first().is_some_and(|c| c == CONDITION_FAILED) {
                    return Err(InsertResidentError::AccountTaken);
                }
                if codes.get(1).is_some_and(|c| c == CONDITION_FAILED) {
                    return Err(InsertResidentError::EmailTaken);
                }
                // A concurrent registration of the same account or address
                // is in flight: try again, and its outcome decides ours.
                if codes.iter().any(|c| c == "TransactionConflict") {
                    attempt += 1;
                    backoff(attempt).await?;
                    continue;
                }
            }
            return Err(Unexpected::new("storing a new resident", error).into());
        }
    }

    /// Gives an unconfirmed resident a new confirmation token; the old one
    /// stops working. False when the resident is no longer unconfirmed.
    #[tracing::instrument(skip_all)]
    pub async fn replace_confirmation_token(
        &self,
        account: &AccountNumber,
        token: &TokenHash,
        token_expires_at: OffsetDateTime,
    ) -> Result<bool, Unexpected> {
        let table = &self.residents_table;
        let confirmation = TokenRecord { account: account.clone(), expires_at: token_expires_at.unix_timestamp() };
        let update = unconfirmed_token_update(table, account, token, None)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(put(table, to_item(confirmation_key(token), &confirmation)?, true)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if cancellation_codes(&error).is_some() => Ok(false),
            Err(error) => Err(Unexpected::new("replacing a confirmation token", error)),
        }
    }

    /// The account of a registration status token, while it is valid.
    #[tracing::instrument(skip_all)]
    pub async fn status_account(
        &self,
        token: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<AccountNumber>, Unexpected> {
        let Some(record) = self.read::<TokenRecord>(status_key(token)).await? else {
            return Ok(None);
        };
        Ok((record.expires_at > now.unix_timestamp()).then_some(record.account))
    }

    #[tracing::instrument(skip_all)]
    pub async fn confirmation(&self, token: &TokenHash) -> Result<Option<TokenRecord>, Unexpected> {
        self.read(confirmation_key(token)).await
    }

    /// Moves a resident from "awaiting e-mail confirmation" to "awaiting
    /// identification", only if `token` is still their current token.
    /// Returns false when that no longer holds (confirmed already, or a newer
    /// letter replaced the token).
    #[tracing::instrument(skip_all)]
    pub async fn confirm_email(
        &self,
        account: &AccountNumber,
        token: &TokenHash,
        confirmed_at: OffsetDateTime,
        ready_at: OffsetDateTime,
    ) -> Result<bool, Unexpected> {
        let result = self
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(resident_key(account)))
            .condition_expression("#status = :awaiting AND confirmation_token_hash = :token")
            .update_expression("SET #status = :next, confirmed_at = :confirmed_at, ready_at = :ready_at")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":awaiting", s(ResidentStatus::AwaitingEmailConfirmation.as_str()))
            .expression_attribute_values(":token", s(token.as_str()))
            .expression_attribute_values(":next", s(ResidentStatus::AwaitingIdentification.as_str()))
            .expression_attribute_values(":confirmed_at", timestamp(confirmed_at))
            .expression_attribute_values(":ready_at", timestamp(ready_at))
            .send()
            .await;
        applied(result, "confirming an e-mail address")
    }

    /// Records the outcome of identification, only if the resident is still
    /// awaiting it; false means another delivery of the job got there first.
    #[tracing::instrument(skip_all)]
    pub async fn finish_identification(
        &self,
        account: &AccountNumber,
        outcome: Identification,
        at: OffsetDateTime,
    ) -> Result<bool, Unexpected> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(resident_key(account)))
            .condition_expression("#status = :awaiting")
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

    /// Claims the right to send the "identified" letter; only one delivery of
    /// a duplicated job gets it. [`Store::release_outcome_letter`] gives it
    /// back when sending failed, so the retry sends it.
    #[tracing::instrument(skip_all)]
    pub async fn claim_outcome_letter(&self, account: &AccountNumber, at: OffsetDateTime) -> Result<bool, Unexpected> {
        let result = self
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(resident_key(account)))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(outcome_letter_at)")
            .update_expression("SET outcome_letter_at = :at")
            .expression_attribute_values(":at", timestamp(at))
            .send()
            .await;
        applied(result, "claiming the identification letter")
    }

    #[tracing::instrument(skip_all)]
    pub async fn release_outcome_letter(&self, account: &AccountNumber) -> Result<(), Unexpected> {
        self.client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(resident_key(account)))
            .update_expression("REMOVE outcome_letter_at")
            .send()
            .await
            .context("releasing the identification letter")?;
        Ok(())
    }

    /// Counts one attempt of `action` by `subject` in the current window
    /// (an atomic counter with TTL, no read-then-write) and says whether it
    /// is within `limit`; when not, how many seconds until the window ends.
    #[tracing::instrument(skip_all, fields(action))]
    pub async fn count_attempt(
        &self,
        action: &str,
        subject: &str,
        window: std::time::Duration,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Result<(), u64>, Unexpected> {
        let window_seconds = i64::try_from(window.as_secs().max(1)).unwrap_or(i64::MAX);
        let start = now.unix_timestamp() - now.unix_timestamp().rem_euclid(window_seconds);
        let end = start + window_seconds;
        let output = self
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(format!("RATE#{action}#{subject}#{start}")))
            .update_expression("ADD hits :one SET expires_at = :end")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":end", AttributeValue::N(end.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .context("counting an attempt")?;
        let hits: u32 = output
            .attributes
            .and_then(|a| a.get("hits").and_then(|h| h.as_n().ok()).and_then(|n| n.parse().ok()))
            .unwrap_or(u32::MAX);
        Ok(if hits <= limit { Ok(()) } else { Err(u64::try_from(end - now.unix_timestamp()).unwrap_or(1).max(1)) })
    }

    /// Moves an unconfirmed resident to another address: the resident's
    /// e-mail and token, the release of the old address and the claim of the
    /// new one, in one transaction. False when the resident is no longer
    /// unconfirmed at `old`.
    #[tracing::instrument(skip_all)]
    pub async fn change_unconfirmed_email(
        &self,
        account: &AccountNumber,
        old: &Email,
        new: &Email,
        token: &TokenHash,
        token_expires_at: OffsetDateTime,
    ) -> Result<bool, InsertResidentError> {
        let table = &self.residents_table;
        let confirmation = TokenRecord { account: account.clone(), expires_at: token_expires_at.unix_timestamp() };
        let update = unconfirmed_token_update(table, account, token, Some((old, new)))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(delete(table, email_key(old), false)?)
            .transact_items(put(table, to_item(email_key(new), &EmailClaim { account: account.clone() })?, true)?)
            .transact_items(put(table, to_item(confirmation_key(token), &confirmation)?, true)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) => match cancellation_codes(&error) {
                Some(codes) if codes.get(2).is_some_and(|c| c == CONDITION_FAILED) => {
                    Err(InsertResidentError::EmailTaken)
                }
                Some(codes) if codes.first().is_some_and(|c| c == CONDITION_FAILED) => Ok(false),
                _ => Err(Unexpected::new("changing an e-mail address", error).into()),
            },
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn create_session(&self, token: &TokenHash, record: &SessionRecord) -> Result<(), Unexpected> {
        self.client
            .put_item()
            .table_name(&self.residents_table)
            .set_item(Some(to_item(session_key(token), record)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .context("storing a session")?;
        Ok(())
    }

    /// A session as stored; whether it is still live is the caller's rule
    /// (DynamoDB deletes expired items only eventually).
    #[tracing::instrument(skip_all)]
    pub async fn session(&self, token: &TokenHash) -> Result<Option<SessionRecord>, Unexpected> {
        self.read(session_key(token)).await
    }

    /// Records use of a live session, moving its idle deadline; a session
    /// deleted meanwhile (logout) is not brought back.
    #[tracing::instrument(skip_all)]
    pub async fn touch_session(&self, token: &TokenHash, now_ms: i64, expires_at: i64) -> Result<(), Unexpected> {
        let result = self
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(session_key(token)))
            .condition_expression("attribute_exists(pk)")
            .update_expression("SET last_seen_ms = :now, expires_at = :expires")
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .expression_attribute_values(":expires", AttributeValue::N(expires_at.to_string()))
            .send()
            .await;
        applied(result, "touching a session")?;
        Ok(())
    }

    async fn delete(&self, key: String, context: &'static str) -> Result<(), Unexpected> {
        self.client.delete_item().table_name(&self.residents_table).key("pk", pk(key)).send().await.context(context)?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn delete_session(&self, token: &TokenHash) -> Result<(), Unexpected> {
        self.delete(session_key(token), "deleting a session").await
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
        let table = &self.residents_table;
        let update = Update::builder()
            .table_name(table)
            .key("pk", pk(resident_key(account)))
            .condition_expression("attribute_exists(pk) AND #status <> :unconfirmed")
            .update_expression("SET reset_token_hash = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":unconfirmed", s(ResidentStatus::AwaitingEmailConfirmation.as_str()))
            .expression_attribute_values(":token", s(token.as_str()))
            .build()
            .context("building a reset token update")?;
        let record = TokenRecord { account: account.clone(), expires_at: expires_at.unix_timestamp() };
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(put(table, to_item(reset_key(token), &record)?, true)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if cancellation_codes(&error).is_some() => Ok(false),
            Err(error) => Err(Unexpected::new("issuing a reset token", error)),
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn reset_record(&self, token: &TokenHash) -> Result<Option<TokenRecord>, Unexpected> {
        self.read(reset_key(token)).await
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
        let table = &self.residents_table;
        let update = Update::builder()
            .table_name(table)
            .key("pk", pk(resident_key(account)))
            .condition_expression("reset_token_hash = :token")
            .update_expression("SET password_hash = :phc REMOVE reset_token_hash ADD session_epoch :one")
            .expression_attribute_values(":token", s(token.as_str()))
            .expression_attribute_values(":phc", s(password_hash))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .context("building a password update")?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(delete(table, reset_key(token), true)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if cancellation_codes(&error).is_some() => Ok(false),
            Err(error) => Err(Unexpected::new("resetting a password", error)),
        }
    }

    /// Until when (Unix milliseconds) the login identifier `subject` is
    /// locked, if it is.
    #[tracing::instrument(skip_all)]
    pub async fn login_locked_until(&self, subject: &str) -> Result<Option<i64>, Unexpected> {
        let Some(item) = self.get(&self.residents_table, "pk", lock_key(subject)).await? else {
            return Ok(None);
        };
        Ok(item.get("locked_until_ms").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()))
    }

    /// Counts one failed login of `subject` (an atomic counter); the failures
    /// are forgotten at `forget_at` (Unix seconds, TTL) unless another comes.
    /// Returns the count.
    #[tracing::instrument(skip_all)]
    pub async fn count_login_failure(&self, subject: &str, forget_at: i64) -> Result<u32, Unexpected> {
        let output = self
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(lock_key(subject)))
            .update_expression("ADD failures :one SET expires_at = :forget")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":forget", AttributeValue::N(forget_at.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .context("counting a login failure")?;
        Ok(output
            .attributes
            .and_then(|a| a.get("failures").and_then(|h| h.as_n().ok()).and_then(|n| n.parse().ok()))
            .unwrap_or(u32::MAX))
    }

    /// Locks `subject` until `until_ms` (never shortening a longer lock).
    #[tracing::instrument(skip_all)]
    pub async fn lock_login(&self, subject: &str, until_ms: i64) -> Result<(), Unexpected> {
        let result = self
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(lock_key(subject)))
            .condition_expression("attribute_not_exists(locked_until_ms) OR locked_until_ms < :until")
            .update_expression("SET locked_until_ms = :until")
            .expression_attribute_values(":until", AttributeValue::N(until_ms.to_string()))
            .send()
            .await;
        applied(result, "locking a login")?;
        Ok(())
    }

    /// Forgets the failures of `subject` (after a successful login or a
    /// password reset).
    #[tracing::instrument(skip_all)]
    pub async fn clear_login_failures(&self, subject: &str) -> Result<(), Unexpected> {
        self.delete(lock_key(subject), "clearing login failures").await
    }

    /// Stores one audit record under `key` (built by `audit.rs`).
    #[tracing::instrument(skip_all)]
    pub async fn put_audit<T: Serialize>(&self, key: String, record: &T) -> Result<(), Unexpected> {
        self.client
            .put_item()
            .table_name(&self.residents_table)
            .set_item(Some(to_item(key, record)?))
            .send()
            .await
            .context("storing an audit record")?;
        Ok(())
    }

    /// Marks the address `email` as not taking mail (a hard bounce or a
    /// complaint). Returns the resident it belongs to, if any.
    #[tracing::instrument(skip_all)]
    pub async fn mark_undeliverable(
        &self,
        email: &Email,
        mark: &Undeliverable,
    ) -> Result<Option<AccountNumber>, Unexpected> {
        let Some(item) = self.get(&self.residents_table, "pk", email_key(email)).await? else {
            return Ok(None);
        };
        let claim: EmailClaim = from_item(item)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(resident_key(&claim.account)))
            .condition_expression("email = :email")
            .update_expression("SET email_undeliverable = :mark")
            .expression_attribute_values(":email", s(email.as_str()))
            .expression_attribute_values(
                ":mark",
                AttributeValue::M(serde_dynamo::to_item(mark).context("mapping an undeliverable mark")?),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(claim.account)),
            Err(e) if condition_failed(&e) => Ok(None),
            Err(e) => Err(Unexpected::new("marking an address undeliverable", e)),
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn put_email_change(&self, token: &TokenHash, record: &EmailChangeRecord) -> Result<(), Unexpected> {
        self.client
            .put_item()
            .table_name(&self.residents_table)
            .set_item(Some(to_item(email_change_key(token), record)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .context("storing an address change")?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn email_change(&self, token: &TokenHash) -> Result<Option<EmailChangeRecord>, Unexpected> {
        self.read(email_change_key(token)).await
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
        change: &EmailChangeRecord,
    ) -> Result<bool, InsertResidentError> {
        let table = &self.residents_table;
        let update = Update::builder()
            .table_name(table)
            .key("pk", pk(resident_key(&change.account)))
            .condition_expression("email = :old")
            .update_expression("SET email = :new REMOVE email_undeliverable")
            .expression_attribute_values(":old", s(change.old_email.as_str()))
            .expression_attribute_values(":new", s(change.new_email.as_str()))
            .build()
            .context("building an address change")?;
        let claim = EmailClaim { account: change.account.clone() };
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(delete(table, email_key(&change.old_email), false)?)
            .transact_items(put(table, to_item(email_key(&change.new_email), &claim)?, true)?)
            .transact_items(delete(table, email_change_key(token), true)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) => match cancellation_codes(&error) {
                Some(codes) if codes.get(2).is_some_and(|c| c == CONDITION_FAILED) => {
                    Err(InsertResidentError::EmailTaken)
                }
                Some(codes) if codes.iter().any(|c| c == CONDITION_FAILED) => Ok(false),
                _ => Err(Unexpected::new("changing a confirmed address", error).into()),
            },
        }
    }
}
