//! The audit log's table: records under `AUDIT#<account or ->#<time>#<id>`,
//! written with `PutItem` only and never overwritten (what they say is
//! `crate::audit`'s).

use serde::Serialize;
use time::OffsetDateTime;

use super::{Item, Key, Table, to_item};
use crate::domain::AccountNumber;
use crate::errors::Unexpected;

#[derive(Clone)]
pub struct AuditLog {
    table: Table,
}

impl AuditLog {
    pub(super) fn new(table: Table) -> Self {
        Self { table }
    }

    /// Stores one audit record about `account` at `at`, under a key of its
    /// own.
    #[tracing::instrument(skip_all)]
    pub async fn put<T: Serialize>(
        &self,
        account: Option<&AccountNumber>,
        at: OffsetDateTime,
        record: &T,
    ) -> Result<(), Unexpected> {
        let AuditItem { item, .. } = self.item(account, at, record)?;
        // Evidence: a record is never overwritten.
        self.table.put_new(item, "storing an audit record").await
    }

    /// The same record as an item to write inside the transaction of the
    /// action it records: stored if and only if the action is, and in the
    /// same round trip.
    pub fn item<T: Serialize>(
        &self,
        account: Option<&AccountNumber>,
        at: OffsetDateTime,
        record: &T,
    ) -> Result<AuditItem, Unexpected> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let key = Key::Audit { account, at, id: &id };
        Ok(AuditItem { table: self.table.clone(), item: to_item(&key, record)? })
    }
}

/// An audit record ready to go into a transaction ([`AuditLog::item`]).
pub struct AuditItem {
    pub(super) table: Table,
    pub(super) item: Item,
}

impl std::fmt::Debug for AuditItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditItem").finish_non_exhaustive()
    }
}
