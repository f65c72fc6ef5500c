//! The audit log's table: records under `AUDIT#<account or ->#<time>#<id>`,
//! written with `PutItem` only and never overwritten (what they say is
//! `crate::audit`'s).

use serde::Serialize;
use time::OffsetDateTime;

use super::{Key, Table, to_item};
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
        let id = uuid::Uuid::new_v4().simple().to_string();
        let key = Key::Audit { account, at, id: &id };
        // Evidence: a record is never overwritten.
        self.table.put_new(to_item(&key, record)?, "storing an audit record").await
    }
}
