//! DynamoDB adapter: one repository per aggregate, each knowing only its
//! own items. Item mapping lives here and only here; every key is a
//! [`Key`].
//!
//! - [`Residents`] (`residents.rs`): the resident (`RESIDENT#<account>`) and
//!   the claims of addresses (`EMAIL#<email>`), and the transactions that
//!   move them together with the links they use up.
//! - [`Links`] (`links.rs`): accounts added to a cabinet after registration
//!   (`LINK#<account>`), and the resident's set of them.
//! - [`Tokens`] (`tokens.rs`): links and cookies that are not sessions:
//!   `CONFIRM#`, `RESET#`, `STATUS#`, `NEWEMAIL#`, `CANCEL#` (each the
//!   SHA-256 of its token; they expire through TTL).
//! - [`Sessions`] (`sessions.rs`): `SESSION#` and the device cookies
//!   (`DEVICE#`).
//! - [`Counters`] (`counters.rs`): rate limit counters
//!   (`RATE#<action>#<subject>#<window>`) and the attempts and locks of a
//!   subject (`LOCK#<subject>`, also the registration pause of an account).
//! - [`AuditLog`] (`audit.rs`): `AUDIT#<account or ->#<time>#<id>` in the
//!   audit table, written with `PutItem` only and never overwritten.
//! - [`Billing`] (`billing.rs`): the billing accounts, in their own table.
//!
//! Transactions (`transaction.rs`) give every item a [`transaction::Role`],
//! so a cancellation is read by role; a conflict with another transaction
//! or throttling is retried, and when it lasts it is reported as a
//! transient failure (503), never as a business refusal.
//!
//! Every instant a record keeps is stored in one form, RFC 3339 in UTC of
//! fixed width ([`instant`]); the TTL attribute alone is a number (Unix
//! seconds), as DynamoDB requires.
//!
//! Unconfirmed registrations carry `expires_at` on the resident and on its
//! e-mail claim: DynamoDB deletes them some time after, and until then they
//! count as gone (`Residents::get` hides them, a new registration replaces
//! them). Confirmation removes it.

mod audit;
mod billing;
mod counters;
pub mod instant;
mod key;
mod links;
mod residents;
mod sessions;
mod tokens;
mod transaction;

pub use audit::{AuditItem, AuditLog};
pub use billing::Billing;
pub use counters::{Counters, LockChange, LockRecord, LockSettlement, SessionOpening};
pub use key::Key;
pub use links::{AddLinkError, Links};
pub use residents::{Confirmation, Identification, InsertResidentError, RegistrationReads, Residents, StageOf};
pub use sessions::{DeviceRecord, SessionRecord, Sessions};
pub use tokens::{ConfirmationRecord, EmailChangeRecord, TokenRecord, Tokens};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::errors::{AwsContext, Context, Unexpected};

use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// The TTL attribute of the residents and audit tables (template.yaml's
/// `TimeToLiveSpecification`): Unix seconds after which DynamoDB may delete
/// the item.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// The repositories, built once per function from one client.
#[derive(Clone)]
pub struct Store {
    pub residents: Residents,
    pub links: Links,
    pub tokens: Tokens,
    pub sessions: Sessions,
    pub counters: Counters,
    pub audit: AuditLog,
    pub billing: Billing,
}

impl Store {
    pub fn new(
        client: Client,
        residents_table: impl Into<String>,
        billing_table: impl Into<String>,
        audit_table: impl Into<String>,
    ) -> Self {
        let residents = Table { client: client.clone(), name: residents_table.into() };
        Self {
            residents: Residents::new(residents.clone()),
            links: Links::new(residents.clone()),
            tokens: Tokens::new(residents.clone()),
            sessions: Sessions::new(residents.clone()),
            counters: Counters::new(residents),
            audit: AuditLog::new(Table { client: client.clone(), name: audit_table.into() }),
            billing: Billing::new(Table { client, name: billing_table.into() }),
        }
    }
}

/// Most tries of throttled or conflicting work before giving up.
const MAX_ATTEMPTS: u32 = 10;

/// Waits before retrying throttled work: 50 ms doubling up to 5 s, with
/// full jitter so parallel writers do not retry in step.
async fn backoff(attempt: u32) -> Result<(), Unexpected> {
    if attempt >= MAX_ATTEMPTS {
        return Err(Unexpected::busy("retrying DynamoDB", "retries exhausted"));
    }
    let ceiling = 50u64.saturating_mul(1 << attempt.min(7)).min(5_000);
    let jitter = getrandom::u64().unwrap_or(0) % (ceiling + 1);
    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
    Ok(())
}

/// Sends a single write to an item that transactions also write (a login
/// lock), again after a backoff while DynamoDB refuses it with
/// `TransactionConflictException`: a transaction held the item for a moment,
/// and the SDK does not retry that. When the retries run out, the last
/// answer is the caller's.
async fn past_transactions<T, E, F, Fut>(mut write: F) -> Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
{
    let mut attempt = 0;
    loop {
        let result = write().await;
        let conflict = match &result {
            Err(error) => {
                error.as_service_error().and_then(ProvideErrorMetadata::code) == Some("TransactionConflictException")
            }
            Ok(_) => false,
        };
        attempt += 1;
        if !conflict || backoff(attempt).await.is_err() {
            return result;
        }
        tracing::info!(attempt, "a lock held by a transaction: trying again");
    }
}

/// One table and the client that reaches it; what every repository holds.
#[derive(Clone)]
struct Table {
    client: Client,
    name: String,
}

#[derive(Serialize)]
struct Keyed<'a, T: Serialize> {
    pk: String,
    #[serde(flatten)]
    item: &'a T,
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn timestamp(at: OffsetDateTime) -> AttributeValue {
    s(at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
}

fn to_item<T: Serialize>(key: &Key<'_>, value: &T) -> Result<Item, Unexpected> {
    serde_dynamo::to_item(Keyed { pk: key.to_string(), item: value }).context("mapping an item for DynamoDB")
}

fn from_item<T: for<'de> Deserialize<'de>>(item: Item) -> Result<T, Unexpected> {
    serde_dynamo::from_item(item).context("reading an item from DynamoDB")
}

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

impl Table {
    /// Stores an item under a key nobody else can hold (the hash of a fresh
    /// random token, or a record id), only if it is new. The condition
    /// guards against a collision that does not happen, so when it fails
    /// the item is this very call's: an attempt whose answer was lost
    /// stored it, and the SDK sent the call again. That is success, not
    /// an error (it was a 500 to a resident whose session was stored).
    async fn put_new(&self, item: Item, context: &'static str) -> Result<(), Unexpected> {
        let result = self
            .client
            .put_item()
            .table_name(&self.name)
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

    /// The item under `key_name` = `key`, read consistently.
    async fn get_raw(&self, key_name: &str, key: AttributeValue) -> Result<Option<Item>, Unexpected> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(key_name, key)
            .consistent_read(true)
            .send()
            .await
            .aws_context("reading an item from DynamoDB")?;
        Ok(output.item)
    }

    async fn get(&self, key: &Key<'_>) -> Result<Option<Item>, Unexpected> {
        self.get_raw("pk", key.value()).await
    }

    /// An item, mapped.
    async fn read<T: for<'de> Deserialize<'de>>(&self, key: &Key<'_>) -> Result<Option<T>, Unexpected> {
        self.get(key).await?.map(from_item).transpose()
    }

    /// The items under `keys`, read consistently, 100 keys per request
    /// (DynamoDB's most), retrying what it leaves unprocessed; in no order.
    async fn batch_get(&self, keys: Vec<Item>, context: &'static str) -> Result<Vec<Item>, Unexpected> {
        let mut items = Vec::new();
        for chunk in keys.chunks(100) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .context("building a batch read")?,
            );
            let mut attempt = 0;
            while let Some(keys) = request.take() {
                let output =
                    self.client.batch_get_item().request_items(&self.name, keys).send().await.aws_context(context)?;
                items.extend(output.responses.and_then(|mut r| r.remove(&self.name)).unwrap_or_default());
                request =
                    output.unprocessed_keys.and_then(|mut u| u.remove(&self.name)).filter(|k| !k.keys().is_empty());
                if request.is_some() {
                    attempt += 1;
                    backoff(attempt).await?;
                }
            }
        }
        Ok(items)
    }

    /// The items under two keys, mapped, in one request.
    async fn read_pair<A, B>(
        &self,
        first: &Key<'_>,
        second: &Key<'_>,
        context: &'static str,
    ) -> Result<(Option<A>, Option<B>), Unexpected>
    where
        A: for<'de> Deserialize<'de>,
        B: for<'de> Deserialize<'de>,
    {
        let keys = [first, second].map(|key| Item::from([("pk".to_owned(), key.value())]));
        let (mut a, mut b) = (None, None);
        let first = first.to_string();
        for item in self.batch_get(keys.into(), context).await? {
            let pk = item.get("pk").and_then(|pk| pk.as_s().ok()).cloned().unwrap_or_default();
            if pk == first {
                a = Some(from_item::<A>(item)?);
            } else {
                b = Some(from_item::<B>(item)?);
            }
        }
        Ok((a, b))
    }

    async fn delete(&self, key: &Key<'_>, context: &'static str) -> Result<(), Unexpected> {
        self.client.delete_item().table_name(&self.name).key("pk", key.value()).send().await.aws_context(context)?;
        Ok(())
    }

    /// An update of the item under `key`, to be completed by the caller.
    fn update(&self, key: &Key<'_>) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.name).key("pk", key.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AccountNumber;

    fn ttl_of<T: Serialize>(record: &T) -> Option<serde_json::Value> {
        serde_json::to_value(record).unwrap().get(TTL_ATTRIBUTE).cloned()
    }

    /// template.yaml names `expires_at` the TTL attribute of both tables;
    /// every record that expires keeps its expiry there, in Unix seconds.
    #[test]
    fn every_record_that_expires_keeps_its_expiry_under_the_ttl_attribute() {
        let account = AccountNumber::parse("100200300").unwrap();
        let email = crate::domain::Email::parse("ivanov@mail.ru").unwrap();
        let at = 1_795_604_700;
        let expiring = [
            ttl_of(&TokenRecord { account: account.clone(), expires_at: at }),
            ttl_of(&ConfirmationRecord {
                account: account.clone(),
                address_nonce: String::new(),
                sent_at: 0,
                expires_at: at,
            }),
            ttl_of(&EmailChangeRecord {
                account: account.clone(),
                old_email: email.clone(),
                new_email: email,
                expires_at: at,
                epoch: 0,
            }),
            ttl_of(&SessionRecord {
                account: account.clone(),
                epoch: 0,
                created_at_ms: 0,
                last_seen_ms: 0,
                expires_at: at,
            }),
            ttl_of(&DeviceRecord { account, epoch: 0, expires_at: at }),
            ttl_of(&LockRecord { failures: 1, locked_until_ms: 0, expires_at: at }),
        ];
        for ttl in expiring {
            assert_eq!(ttl, Some(serde_json::json!(at)));
        }
        assert_eq!(TTL_ATTRIBUTE, "expires_at");
    }
}
