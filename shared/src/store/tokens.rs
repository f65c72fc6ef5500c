//! Links and cookies other than sessions, each stored as the SHA-256 of its
//! token and expiring through TTL: confirmation links (`CONFIRM#`), reset
//! links (`RESET#`), registration status cookies (`STATUS#`), pending
//! address changes (`NEWEMAIL#`) and the links that cancel them
//! (`CANCEL#`). Transactions that use a link up together with the resident
//! are the resident's ([`super::Residents`]).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::transaction::{Role, Transaction};
use super::{Key, Table, instant, to_item};
use crate::domain::{AccountNumber, Email, TokenHash};
use crate::errors::Unexpected;

/// A token of a link or cookie as stored (confirmation, reset, status): whose
/// it is and until when (Unix seconds, also the TTL).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub account: AccountNumber,
    pub expires_at: i64,
}

/// A confirmation link as stored: whose it is, the address it was sent
/// under ([`crate::domain::Resident::address_nonce`]), when it went (Unix
/// seconds, stored as an [`instant`]) and until when it works (Unix
/// seconds, also the TTL).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmationRecord {
    pub account: AccountNumber,
    /// Empty in links of the first version, which match no resident.
    #[serde(default)]
    pub address_nonce: String,
    #[serde(default, with = "instant::seconds")]
    pub sent_at: i64,
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

#[derive(Clone)]
pub struct Tokens {
    table: Table,
}

impl Tokens {
    pub(super) fn new(table: Table) -> Self {
        Self { table }
    }

    /// Stores a confirmation link about to be sent. Links sent earlier keep
    /// working: a new letter never kills the one the resident may open first.
    #[tracing::instrument(skip_all)]
    pub async fn put_confirmation(&self, token: &TokenHash, record: &ConfirmationRecord) -> Result<(), Unexpected> {
        self.table.put_new(to_item(&Key::Confirmation(token), record)?, "storing a confirmation link").await
    }

    /// Removes a confirmation link whose letter was never sent.
    #[tracing::instrument(skip_all)]
    pub async fn delete_confirmation(&self, token: &TokenHash) -> Result<(), Unexpected> {
        self.table.delete(&Key::Confirmation(token), "removing an unsent confirmation link").await
    }

    #[tracing::instrument(skip_all)]
    pub async fn confirmation(&self, token: &TokenHash) -> Result<Option<ConfirmationRecord>, Unexpected> {
        self.table.read(&Key::Confirmation(token)).await
    }

    /// The account of a registration status token, while it is valid.
    #[tracing::instrument(skip_all)]
    pub async fn status_account(
        &self,
        token: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<AccountNumber>, Unexpected> {
        let Some(record) = self.table.read::<TokenRecord>(&Key::Status(token)).await? else {
            return Ok(None);
        };
        Ok((record.expires_at > now.unix_timestamp()).then_some(record.account))
    }

    #[tracing::instrument(skip_all)]
    pub async fn reset_record(&self, token: &TokenHash) -> Result<Option<TokenRecord>, Unexpected> {
        self.table.read(&Key::Reset(token)).await
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
        let table = &self.table;
        // The cancel link knows both addresses, so it can also undo a
        // change that was already applied.
        let cancel_record = record;
        let transaction = Transaction::default()
            .put_new(Role::Link, table, to_item(&Key::EmailChange(token), record)?)?
            .put_new(Role::CancelLink, table, to_item(&Key::Cancel(cancel), cancel_record)?)?;
        match transaction.run(table, "storing an address change").await? {
            Ok(()) => Ok(()),
            Err(_) => Err(Unexpected::new("storing an address change", std::io::Error::other("a new link collided"))),
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn email_change(&self, token: &TokenHash) -> Result<Option<EmailChangeRecord>, Unexpected> {
        self.table.read(&Key::EmailChange(token)).await
    }

    #[tracing::instrument(skip_all)]
    pub async fn cancel_record(&self, token: &TokenHash) -> Result<Option<EmailChangeRecord>, Unexpected> {
        self.table.read(&Key::Cancel(token)).await
    }
}
