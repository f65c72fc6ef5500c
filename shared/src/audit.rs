//! The audit log of security events: structured records in the audit table
//! (`AUDIT#...`, written with `PutItem` only, never overwritten), kept for
//! the retention period through TTL. Records
//! name the account and the caller's IP address, never a password, a token,
//! a name, a phone or an address in clear.

use serde::Serialize;
use time::OffsetDateTime;

use crate::clock;
use crate::domain::{AccountNumber, Login};
use crate::errors::Unexpected;
use crate::services::Services;
use crate::store::AuditItem;

/// Who sent a request: the source address API Gateway saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub ip: String,
}

impl Requester {
    pub fn new(ip: impl Into<String>) -> Self {
        Self { ip: ip.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    Registered,
    EmailConfirmed,
    EmailChangeRequested,
    EmailChangeCancelled,
    EmailChanged,
    Identified,
    IdentificationRejected,
    LoginSucceeded,
    LoginFailed,
    Locked,
    RateLimited,
    LoggedOut,
    ResetRequested,
    ResetDone,
    EmailUndeliverable,
    RegistrationPaused,
    /// An account added to a cabinet (`detail`: the cabinet's first account).
    AccountLinked,
    AccountUnlinked,
}

#[derive(Debug, Serialize)]
struct AuditRecord<'a> {
    event: AuditEvent,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    /// The login identifier as typed, masked (for events with no account).
    #[serde(skip_serializing_if = "Option::is_none")]
    login: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    expires_at: i64,
}

/// A login identifier as it may be logged and audited: an address masked,
/// an account number as is, anything else not at all.
pub fn masked_login(login: &str) -> String {
    match Login::parse(login) {
        Some(Login::Email(email)) => email.masked(),
        Some(Login::Account(account)) => account.to_string(),
        None => "(неразборчиво)".to_owned(),
    }
}

/// What happened, about whom, from where.
#[derive(Debug, Default, Clone, Copy)]
pub struct Entry<'a> {
    pub account: Option<&'a AccountNumber>,
    pub login: Option<&'a str>,
    pub requester: Option<&'a Requester>,
    pub detail: Option<&'a str>,
}

fn audit_record<'a>(services: &Services, event: AuditEvent, entry: &Entry<'a>) -> AuditRecord<'a> {
    let at = clock::now();
    let retention = i64::try_from(services.config.audit_retention.as_secs()).unwrap_or(i64::MAX);
    AuditRecord {
        event,
        at,
        account: entry.account.map(AccountNumber::as_str),
        login: entry.login.map(masked_login),
        ip: entry.requester.map(|r| r.ip.as_str()),
        detail: entry.detail,
        expires_at: at.unix_timestamp().saturating_add(retention),
    }
}

/// Records `event`. A failure to record is logged, not passed on: the
/// resident's action has happened either way.
pub async fn record(services: &Services, event: AuditEvent, entry: Entry<'_>) {
    let record = audit_record(services, event, &entry);
    if let Err(error) = services.store.audit.put(entry.account, record.at, &record).await {
        tracing::error!(%error, ?event, "an audit record could not be stored");
    }
}

/// The record of `event` as an item for the transaction of the action
/// itself: stored exactly when the action is.
pub fn item(services: &Services, event: AuditEvent, entry: Entry<'_>) -> Result<AuditItem, Unexpected> {
    let record = audit_record(services, event, &entry);
    services.store.audit.item(entry.account, record.at, &record)
}
