//! Login sessions (`SESSION#<sha256>`) and the browsers that logged in as a
//! resident (`DEVICE#<sha256>`, the device cookie); both expire through
//! TTL, and whether one is still live is the caller's rule.

use serde::{Deserialize, Serialize};

use super::{Item, Key, TTL_ATTRIBUTE, Table, applied, instant, n, to_item};
use crate::domain::{AccountNumber, TokenHash};
use crate::errors::Unexpected;

/// A login session as stored. It ends at the first of: idle too long
/// (`last_seen_ms` + idle), too old (`created_at_ms` + lifetime), logout, or a
/// password reset (the resident's `session_epoch` moves past `epoch`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub account: AccountNumber,
    #[serde(default)]
    pub epoch: u64,
    /// Unix milliseconds, stored as an [`instant`] (the name is the one
    /// items were first written under).
    #[serde(with = "instant::millis")]
    pub created_at_ms: i64,
    #[serde(with = "instant::millis")]
    pub last_seen_ms: i64,
    /// TTL (seconds): DynamoDB removes the item some time after this.
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

#[derive(Clone)]
pub struct Sessions {
    table: Table,
}

impl Sessions {
    pub(super) fn new(table: Table) -> Self {
        Self { table }
    }

    /// A session as stored; whether it is still live is the caller's rule
    /// (DynamoDB deletes expired items only eventually).
    #[tracing::instrument(skip_all)]
    pub async fn get(&self, token: &TokenHash) -> Result<Option<SessionRecord>, Unexpected> {
        self.table.read(&Key::Session(token)).await
    }

    /// Records use of a live session, moving its idle deadline; a session
    /// deleted meanwhile (logout) is not brought back.
    #[tracing::instrument(skip_all)]
    pub async fn touch(&self, token: &TokenHash, now_ms: i64, expires_at: i64) -> Result<(), Unexpected> {
        let result = self
            .table
            .update(&Key::Session(token))
            .condition_expression("attribute_exists(pk)")
            .update_expression("SET last_seen_ms = :now, #ttl = :expires")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", instant::value_millis(now_ms))
            .expression_attribute_values(":expires", n(expires_at))
            .send()
            .await;
        applied(result, "touching a session")?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn delete(&self, token: &TokenHash) -> Result<(), Unexpected> {
        self.table.delete(&Key::Session(token), "deleting a session").await
    }

    #[tracing::instrument(skip_all)]
    pub async fn device(&self, token: &TokenHash) -> Result<Option<DeviceRecord>, Unexpected> {
        self.table.read(&Key::Device(token)).await
    }
}

/// A new session as an item, for the transaction of the login that opens
/// it ([`super::Counters::settle`]).
pub(super) fn session_item(token: &TokenHash, record: &SessionRecord) -> Result<Item, Unexpected> {
    to_item(&Key::Session(token), record)
}

/// A new device record as an item, for the same transaction.
pub(super) fn device_item(token: &TokenHash, record: &DeviceRecord) -> Result<Item, Unexpected> {
    to_item(&Key::Device(token), record)
}
