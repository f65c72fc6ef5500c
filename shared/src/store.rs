//! DynamoDB adapter: residents, their e-mail claims, confirmation tokens and
//! sessions in one table; the billing accounts in another. Item mapping lives
//! here and only here.
//!
//! Keys of the residents table (`pk`):
//! - `RESIDENT#<account>`: the resident; one per account number.
//! - `EMAIL#<email>`: claims an address; one resident per address.
//! - `CONFIRM#<sha256>`: a confirmation link; every one sent to the current
//!   address works until it expires (TTL).
//! - `SESSION#<sha256>`: a login session; expires through TTL.
//! - `RESET#<sha256>`: a password reset token; expires through TTL.
//! - `NEWEMAIL#<sha256>`: a pending change of a confirmed address; expires
//!   through TTL.
//! - `STATUS#<sha256>`: the registration status cookie's token; expires
//!   through TTL.
//! - `RATE#<action>#<subject>#<window>`: a rate limit counter.
//! - `LOCK#<subject>`: login attempts of one resident (or one unknown
//!   identifier, or one known device) and the lock they earned; also the
//!   registration pause of an account (`LOCK#register:<account>`).
//! - `DEVICE#<sha256>`: a browser that logged in as a resident before (its
//!   long-lived cookie); expires through TTL.
//! - `CANCEL#<sha256>`: the link, sent to the old address, that cancels a
//!   pending address change; expires through TTL.
//!
//! Unconfirmed registrations carry `expires_at` on the resident and on its
//! e-mail claim: DynamoDB deletes them some time after, and until then they
//! count as gone (`Store::resident` hides them, a new registration replaces
//! them). Confirmation removes it.
//!
//! Audit records (`AUDIT#<account or ->#<time>#<id>`) live in their own table,
//! written with `PutItem` only and never overwritten; they expire after the
//! retention period.

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
use crate::errors::{AwsContext, Context, Unexpected};

use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// Most tries of one batch before the import gives up (and is retried whole).
const MAX_BATCH_ATTEMPTS: u32 = 10;

/// Waits before retrying throttled work: 50 ms doubling up to 5 s, with
/// full jitter so parallel writers do not retry in step.
async fn backoff(attempt: u32) -> Result<(), Unexpected> {
    if attempt >= MAX_BATCH_ATTEMPTS {
        return Err(Unexpected::busy("retrying DynamoDB", "retries exhausted"));
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
    audit_table: String,
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

/// A confirmation link as stored: whose it is, the address it was sent
/// under ([`Resident::address_nonce`]), when it went and until when it works
/// (Unix seconds, also the TTL).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmationRecord {
    pub account: AccountNumber,
    /// Empty in links of the first version, which match no resident.
    #[serde(default)]
    pub address_nonce: String,
    #[serde(default)]
    pub sent_at: i64,
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
    /// Set while the registration is unconfirmed (TTL, Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

/// Attempts (of logging in, or of anything that checks a password) of one
/// subject and the lock they earned, as stored under `LOCK#<subject>`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Attempts in a row not ended by a success (counted before the
    /// password is verified).
    #[serde(default)]
    pub failures: u32,
    /// Until when (Unix milliseconds) no attempt is verified; 0 for none.
    #[serde(default)]
    pub locked_until_ms: i64,
    /// When the attempts are forgotten (Unix seconds, TTL).
    #[serde(default)]
    pub expires_at: i64,
}

/// A browser that logged in as `account`: its own lock, so that a stranger
/// locking the resident does not lock it out (OWASP's device cookie). Valid
/// while the resident's session epoch is `epoch` (a reset ends it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub account: AccountNumber,
    pub epoch: u64,
    pub expires_at: i64,
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
    /// The resident's session epoch when asked: a password reset or a
    /// cancellation moves it on, and the change no longer applies.
    #[serde(default)]
    pub epoch: u64,
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

fn device_key(hash: &TokenHash) -> String {
    format!("DEVICE#{}", hash.as_str())
}

fn cancel_key(hash: &TokenHash) -> String {
    format!("CANCEL#{}", hash.as_str())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
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

/// A transactional put of an item that may exist only as an expired
/// unconfirmed registration (or its claim), which it replaces.
fn put_replacing_expired(table: &str, item: Item, now: i64) -> Result<TransactWriteItem, Unexpected> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
        .expression_attribute_values(":now", n(now))
        .build()
        .context("building a transactional put")?;
    Ok(TransactWriteItem::builder().put(put).build())
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
        Err(e) => Err(Unexpected::aws(context, e)),
    }
}

/// How a transaction ended when it did not apply: one reason code per
/// item, in order (`ConditionalCheckFailed`, `None`, ...).
type Cancelled = Vec<String>;

fn failed_at(codes: &Cancelled, index: usize) -> bool {
    codes.get(index).is_some_and(|c| c == CONDITION_FAILED)
}

impl Store {
    /// Runs a transaction, again while it only collided with another one
    /// in flight (`TransactionConflict`, which is no answer about the data:
    /// two tabs confirming at once must not get an error); `Ok(Err(codes))`
    /// when a condition failed.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        context: &'static str,
    ) -> Result<Result<(), Cancelled>, Unexpected> {
        let mut attempt = 0;
        loop {
            let result = self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            let Err(error) = result else {
                return Ok(Ok(()));
            };
            match cancellation_codes(&error) {
                Some(codes) if codes.iter().any(|c| c == CONDITION_FAILED) => return Ok(Err(codes)),
                Some(codes) if codes.iter().any(|c| c == "TransactionConflict") => {
                    attempt += 1;
                    backoff(attempt).await?;
                }
                _ => return Err(Unexpected::aws(context, error)),
            }
        }
    }

    pub fn new(client: Client, residents_table: impl Into<String>, billing_table: impl Into<String>) -> Self {
        let residents_table = residents_table.into();
        Self { client, audit_table: residents_table.clone(), residents_table, billing_table: billing_table.into() }
    }

    /// Audit records go to `table` (the stack's `AuditTable`).
    pub fn with_audit_table(mut self, table: impl Into<String>) -> Self {
        self.audit_table = table.into();
        self
    }

    /// Stores an item under a key nobody else can hold (the hash of a fresh
    /// random token, or a record id), only if it is new. The condition
    /// guards against a collision that does not happen, so when it fails
    /// the item is this very call's: an attempt whose answer was lost
    /// stored it, and the SDK sent the call again. That is success, not
    /// an error (it was a 500 to a resident whose session was stored).
    async fn put_new(&self, table: &str, item: Item, context: &'static str) -> Result<(), Unexpected> {
        let result = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                tracing::info!(context, "stored already by an attempt whose answer was lost");
                Ok(())
            }
            Err(error) => Err(Unexpected::aws(context, error)),
        }
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
            .aws_context("reading an item from DynamoDB")?;
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
            .aws_context("storing a billing account")?;
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
                .aws_context("reading billing accounts")?;
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
                .aws_context("writing billing accounts")?;
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

    /// The resident of `account`; an unconfirmed registration past its
    /// expiry counts as gone even before DynamoDB deletes it.
    #[tracing::instrument(skip_all)]
    pub async fn resident(&self, account: &AccountNumber) -> Result<Option<Resident>, Unexpected> {
        let resident: Option<Resident> = self.read(resident_key(account)).await?;
        let now = crate::clock::now().unix_timestamp();
        Ok(resident.filter(|r| r.expires_at.is_none_or(|at| at > now)))
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
        // A claim left by an expired registration may point at an account
        // registered again since, with another address.
        Ok(self.resident(&claim.account).await?.filter(|r| r.email == *email))
    }

    /// Stores a new resident, their e-mail claim and the token of their
    /// status page in one transaction: either all exist afterwards or none
    /// does, and of concurrent registrations of one account or one address
    /// exactly one wins.
    #[tracing::instrument(skip_all)]
    pub async fn insert_resident(
        &self,
        resident: &Resident,
        status_token: &TokenHash,
        status_expires_at: OffsetDateTime,
    ) -> Result<(), InsertResidentError> {
        let table = &self.residents_table;
        let status = TokenRecord { account: resident.account.clone(), expires_at: status_expires_at.unix_timestamp() };
        let claim = EmailClaim { account: resident.account.clone(), expires_at: resident.expires_at };
        let now = crate::clock::now().unix_timestamp();
        let items = vec![
            put_replacing_expired(table, to_item(resident_key(&resident.account), resident)?, now)?,
            put_replacing_expired(table, to_item(email_key(&resident.email), &claim)?, now)?,
            put(table, to_item(status_key(status_token), &status)?, true)?,
        ];
        // Of concurrent registrations of one account or address, the one
        // that went first decides the others' answers.
        match self.transact(items, "storing a new resident").await? {
            Ok(()) => Ok(()),
            Err(codes) if failed_at(&codes, 0) => Err(InsertResidentError::AccountTaken),
            Err(codes) if failed_at(&codes, 1) => Err(InsertResidentError::EmailTaken),
            Err(_) => {
                Err(Unexpected::new("storing a new resident", std::io::Error::other("a new status token collided"))
                    .into())
            }
        }
    }

    /// Stores a confirmation link about to be sent. Links sent earlier keep
    /// working: a new letter never kills the one the resident may open first.
    #[tracing::instrument(skip_all)]
    pub async fn put_confirmation(&self, token: &TokenHash, record: &ConfirmationRecord) -> Result<(), Unexpected> {
        let item = to_item(confirmation_key(token), record)?;
        self.put_new(&self.residents_table, item, "storing a confirmation link").await
    }

    /// Removes a confirmation link whose letter was never sent.
    #[tracing::instrument(skip_all)]
    pub async fn delete_confirmation(&self, token: &TokenHash) -> Result<(), Unexpected> {
        self.delete(confirmation_key(token), "removing an unsent confirmation link").await
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
    pub async fn confirmation(&self, token: &TokenHash) -> Result<Option<ConfirmationRecord>, Unexpected> {
        self.read(confirmation_key(token)).await
    }

    /// Moves a resident from "awaiting e-mail confirmation" to "awaiting
    /// identification", only if they are still at the address the link was
    /// sent under (`address_nonce`). Returns false when that no longer holds
    /// (confirmed already, or the address changed meanwhile).
    ///
    /// The registration stops expiring: the resident and the claim of
    /// `email` lose their `expires_at`, in the same transaction.
    #[tracing::instrument(skip_all)]
    pub async fn confirm_email(
        &self,
        account: &AccountNumber,
        email: &Email,
        address_nonce: &str,
        confirmed_at: OffsetDateTime,
        ready_at: OffsetDateTime,
    ) -> Result<bool, Unexpected> {
        let table = &self.residents_table;
        // Registrations stored before address nonces existed have none.
        let same_address =
            if address_nonce.is_empty() { "attribute_not_exists(address_nonce)" } else { "address_nonce = :nonce" };
        let mut resident = Update::builder()
            .table_name(table)
            .key("pk", pk(resident_key(account)))
            .condition_expression(format!(
                "#status = :awaiting AND {same_address} AND email = :email AND (attribute_not_exists(expires_at) OR expires_at > :now)",
            ))
            .update_expression("SET #status = :next, confirmed_at = :confirmed_at, ready_at = :ready_at REMOVE expires_at")
            .expression_attribute_names("#status", "status")
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
            .table_name(table)
            .key("pk", pk(email_key(email)))
            .condition_expression("account = :account")
            .update_expression("REMOVE expires_at")
            .expression_attribute_values(":account", s(account.as_str()))
            .build()
            .context("building a confirmation")?;
        let items = vec![
            TransactWriteItem::builder().update(resident).build(),
            TransactWriteItem::builder().update(claim).build(),
        ];
        Ok(self.transact(items, "confirming an e-mail address").await?.is_ok())
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

    /// Claims the right to send the "identified" letter until it is marked
    /// sent; only one delivery of a duplicated job gets it. A claim older
    /// than `stale_after` can be taken again: its sender died, or failed and
    /// could not give it back ([`Store::release_outcome_letter`]), and the
    /// letter must not be lost.
    ///
    /// Each claim carries an id of its own: when the condition fails, the
    /// claim found may be this very call's, taken by an attempt whose
    /// answer was lost (the SDK sent the call again), and then it is ours.
    #[tracing::instrument(skip_all)]
    pub async fn claim_outcome_letter(
        &self,
        account: &AccountNumber,
        at: OffsetDateTime,
        stale_after: std::time::Duration,
    ) -> Result<bool, Unexpected> {
        let stale = at.unix_timestamp().saturating_sub(i64::try_from(stale_after.as_secs()).unwrap_or(i64::MAX));
        let claim = uuid::Uuid::new_v4().simple().to_string();
        let result = self
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(resident_key(account)))
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(outcome_letter_sent_at) AND (attribute_not_exists(outcome_letter_claimed_at) OR outcome_letter_claimed_at < :stale)",
            )
            .update_expression("SET outcome_letter_claimed_at = :at, outcome_letter_claim = :claim")
            .expression_attribute_values(":at", n(at.unix_timestamp()))
            .expression_attribute_values(":stale", n(stale))
            .expression_attribute_values(":claim", s(claim.as_str()))
            .send()
            .await;
        if applied(result, "claiming the identification letter")? {
            return Ok(true);
        }
        let Some(item) = self.get(&self.residents_table, "pk", resident_key(account)).await? else {
            return Ok(false);
        };
        let ours = item.get("outcome_letter_claim").and_then(|c| c.as_s().ok()).is_some_and(|c| *c == claim);
        Ok(ours && !item.contains_key("outcome_letter_sent_at"))
    }

    /// The "identified" letter went: no claim is taken again.
    #[tracing::instrument(skip_all)]
    pub async fn mark_outcome_letter_sent(
        &self,
        account: &AccountNumber,
        at: OffsetDateTime,
    ) -> Result<(), Unexpected> {
        self.client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(resident_key(account)))
            .update_expression("SET outcome_letter_sent_at = :at")
            .expression_attribute_values(":at", n(at.unix_timestamp()))
            .send()
            .await
            .aws_context("marking the identification letter sent")?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn release_outcome_letter(&self, account: &AccountNumber) -> Result<(), Unexpected> {
        self.client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(resident_key(account)))
            .update_expression("REMOVE outcome_letter_claimed_at, outcome_letter_claim")
            .send()
            .await
            .aws_context("releasing the identification letter")?;
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
            .aws_context("counting an attempt")?;
        let hits: u32 = output
            .attributes
            .and_then(|a| a.get("hits").and_then(|h| h.as_n().ok()).and_then(|n| n.parse().ok()))
            .unwrap_or(u32::MAX);
        Ok(if hits <= limit { Ok(()) } else { Err(u64::try_from(end - now.unix_timestamp()).unwrap_or(1).max(1)) })
    }

    /// Gives back one attempt counted by [`Store::count_attempt`] at
    /// `counted_at`, in that window (an attempt that turned out not to
    /// count, such as a name check that matched, or a request that failed
    /// on our side).
    #[tracing::instrument(skip_all, fields(action))]
    pub async fn refund_attempt(
        &self,
        action: &str,
        subject: &str,
        window: std::time::Duration,
        counted_at: OffsetDateTime,
    ) -> Result<(), Unexpected> {
        let window_seconds = i64::try_from(window.as_secs().max(1)).unwrap_or(i64::MAX);
        let start = counted_at.unix_timestamp() - counted_at.unix_timestamp().rem_euclid(window_seconds);
        let result = self
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(format!("RATE#{action}#{subject}#{start}")))
            .condition_expression("hits > :zero")
            .update_expression("ADD hits :minus")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // None left in that window (its item gone, or given back already).
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(error) => Err(Unexpected::aws("giving back an attempt", error)),
        }
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
        let table = &self.residents_table;
        let update = Update::builder()
            .table_name(table)
            .key("pk", pk(resident_key(account)))
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
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            delete(table, email_key(old), false)?,
            put_replacing_expired(table, to_item(email_key(new), &claim)?, now)?,
        ];
        // The resident first: when they are no longer at `old`, a request
        // like this one (a double submit) got there first, and the claim of
        // `new` failing is theirs, not another cabinet's.
        match self.transact(items, "changing an e-mail address").await? {
            Ok(()) => Ok(true),
            Err(codes) if failed_at(&codes, 0) => Ok(false),
            Err(_) => Err(InsertResidentError::EmailTaken),
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn create_session(&self, token: &TokenHash, record: &SessionRecord) -> Result<(), Unexpected> {
        self.put_new(&self.residents_table, to_item(session_key(token), record)?, "storing a session").await
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
        self.client
            .delete_item()
            .table_name(&self.residents_table)
            .key("pk", pk(key))
            .send()
            .await
            .aws_context(context)?;
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
            Err(error) => Err(Unexpected::aws("issuing a reset token", error)),
        }
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
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(resident_key(account)))
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
            Err(error) => Err(Unexpected::aws("resetting a password", error)),
        }
    }

    /// The attempts of `subject` and its lock, as stored (possibly past
    /// `expires_at`: DynamoDB deletes items only eventually).
    #[tracing::instrument(skip_all)]
    pub async fn lock_record(&self, subject: &str) -> Result<Option<LockRecord>, Unexpected> {
        self.read(lock_key(subject)).await
    }

    /// Writes `next` for `subject` only if the stored attempts are still
    /// `seen` (`None`: no item): a compare-and-swap, so that of concurrent
    /// attempts each sees the count and lock the one before it left.
    #[tracing::instrument(skip_all)]
    pub async fn swap_lock_record(
        &self,
        subject: &str,
        seen: Option<u32>,
        next: &LockRecord,
    ) -> Result<bool, Unexpected> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(lock_key(subject)))
            .update_expression("SET failures = :failures, locked_until_ms = :until, expires_at = :forget")
            .expression_attribute_values(":failures", n(i64::from(next.failures)))
            .expression_attribute_values(":until", n(next.locked_until_ms))
            .expression_attribute_values(":forget", n(next.expires_at));
        update = match seen {
            None => update.condition_expression("attribute_not_exists(pk)"),
            Some(seen) => {
                update.condition_expression("failures = :seen").expression_attribute_values(":seen", n(i64::from(seen)))
            }
        };
        applied(update.send().await, "counting an attempt against the lock")
    }

    /// Locks `subject` until `until_ms` (never shortening a longer lock);
    /// the item goes with the lock.
    #[tracing::instrument(skip_all)]
    pub async fn lock(&self, subject: &str, until_ms: i64) -> Result<(), Unexpected> {
        let result = self
            .client
            .update_item()
            .table_name(&self.residents_table)
            .key("pk", pk(lock_key(subject)))
            .condition_expression("attribute_not_exists(locked_until_ms) OR locked_until_ms < :until")
            .update_expression("SET locked_until_ms = :until, expires_at = :forget")
            .expression_attribute_values(":until", n(until_ms))
            .expression_attribute_values(":forget", n(until_ms.div_euclid(1000).saturating_add(1)))
            .send()
            .await;
        applied(result, "locking")?;
        Ok(())
    }

    /// Forgets the attempts of `subject` (after a success or a password
    /// reset).
    #[tracing::instrument(skip_all)]
    pub async fn clear_lock(&self, subject: &str) -> Result<(), Unexpected> {
        self.delete(lock_key(subject), "clearing login failures").await
    }

    #[tracing::instrument(skip_all)]
    pub async fn put_device(&self, token: &TokenHash, record: &DeviceRecord) -> Result<(), Unexpected> {
        self.put_new(&self.residents_table, to_item(device_key(token), record)?, "storing a device").await
    }

    #[tracing::instrument(skip_all)]
    pub async fn device(&self, token: &TokenHash) -> Result<Option<DeviceRecord>, Unexpected> {
        self.read(device_key(token)).await
    }

    /// Stores one audit record under `key` (built by `audit.rs`).
    #[tracing::instrument(skip_all)]
    pub async fn put_audit<T: Serialize>(&self, key: String, record: &T) -> Result<(), Unexpected> {
        // Evidence: a record is never overwritten.
        self.put_new(&self.audit_table, to_item(key, record)?, "storing an audit record").await
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
            Err(e) => Err(Unexpected::aws("marking an address undeliverable", e)),
        }
    }

    /// Stores a pending address change and the token of the link that
    /// cancels it (sent to the old address), in one transaction.
    #[tracing::instrument(skip_all)]
    pub async fn put_email_change(
        &self,
        token: &TokenHash,
        record: &EmailChangeRecord,
        cancel: &TokenHash,
    ) -> Result<(), Unexpected> {
        let table = &self.residents_table;
        // The cancel link knows both addresses, so it can also undo a
        // change that was already applied.
        let cancel_record = record;
        self.client
            .transact_write_items()
            .transact_items(put(table, to_item(email_change_key(token), record)?, true)?)
            .transact_items(put(table, to_item(cancel_key(cancel), cancel_record)?, true)?)
            .send()
            .await
            .aws_context("storing an address change")?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn cancel_record(&self, token: &TokenHash) -> Result<Option<EmailChangeRecord>, Unexpected> {
        self.read(cancel_key(token)).await
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
        change: &EmailChangeRecord,
        cancel: &TokenHash,
    ) -> Result<bool, InsertResidentError> {
        let table = &self.residents_table;
        let update = Update::builder()
            .table_name(table)
            .key("pk", pk(resident_key(&change.account)))
            .condition_expression("email = :new")
            .update_expression("SET email = :old REMOVE email_undeliverable, reset_token_hash ADD session_epoch :one")
            .expression_attribute_values(":old", s(change.old_email.as_str()))
            .expression_attribute_values(":new", s(change.new_email.as_str()))
            .expression_attribute_values(":one", n(1))
            .build()
            .context("building an address revert")?;
        let (account, from, to) = (&change.account, &change.new_email, &change.old_email);
        self.move_email_claim(update, account, from, to, cancel_key(cancel), "reverting an address change").await
    }

    /// The resident said "not me" to an address change: every pending change
    /// and reset link dies and every session ends (the epoch moves on), and
    /// the cancel link is used up, in one transaction. False when the link
    /// was used already.
    #[tracing::instrument(skip_all)]
    pub async fn cancel_email_changes(&self, account: &AccountNumber, cancel: &TokenHash) -> Result<bool, Unexpected> {
        let table = &self.residents_table;
        let update = Update::builder()
            .table_name(table)
            .key("pk", pk(resident_key(account)))
            .condition_expression("attribute_exists(pk)")
            .update_expression("REMOVE reset_token_hash ADD session_epoch :one")
            .expression_attribute_values(":one", n(1))
            .build()
            .context("building a cancellation")?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(delete(table, cancel_key(cancel), true)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if cancellation_codes(&error).is_some() => Ok(false),
            Err(error) => Err(Unexpected::aws("cancelling address changes", error)),
        }
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
        self.move_email_claim(update, account, from, to, email_change_key(token), "changing a confirmed address").await
    }

    /// One transaction: the resident's `update`, the release of the claim
    /// of `from`, the claim of `to` (unless someone else holds it) and the
    /// use of the link `token_key`. `Ok(false)` when a condition other than
    /// the claim failed (the link was used, the resident changed).
    async fn move_email_claim(
        &self,
        update: Update,
        account: &AccountNumber,
        from: &Email,
        to: &Email,
        token_key: String,
        what: &'static str,
    ) -> Result<bool, InsertResidentError> {
        let table = &self.residents_table;
        let claim = EmailClaim { account: account.clone(), expires_at: None };
        let now = crate::clock::now().unix_timestamp();
        let items = vec![
            TransactWriteItem::builder().update(update).build(),
            delete(table, email_key(from), false)?,
            put_replacing_expired(table, to_item(email_key(to), &claim)?, now)?,
            delete(table, token_key, true)?,
        ];
        // The resident and the link first: when either no longer holds, a
        // request like this one (the same link opened twice) got there first.
        match self.transact(items, what).await? {
            Ok(()) => Ok(true),
            Err(codes) if failed_at(&codes, 0) || failed_at(&codes, 3) => Ok(false),
            Err(_) => Err(InsertResidentError::EmailTaken),
        }
    }
}
