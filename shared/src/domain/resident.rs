//! A registered resident and the stages they go through.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountNumber, Email, FullName, Phone};

/// registered -> e-mail confirmed (awaiting identification) -> active, or
/// rejected when the billing data no longer agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResidentStatus {
    AwaitingEmailConfirmation,
    AwaitingIdentification,
    Active,
    Rejected,
}

impl ResidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResidentStatus::AwaitingEmailConfirmation => "awaiting_email_confirmation",
            ResidentStatus::AwaitingIdentification => "awaiting_identification",
            ResidentStatus::Active => "active",
            ResidentStatus::Rejected => "rejected",
        }
    }
}

/// Why identification did not let a resident in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionReason {
    /// The account is no longer in the billing data.
    AccountVanished,
    /// The billing data names another payer for the account now.
    PayerChanged,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resident {
    pub account: AccountNumber,
    pub full_name: FullName,
    pub phone: Phone,
    pub email: Email,
    pub password_hash: String,
    pub status: ResidentStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
    /// Random, renewed at registration and at every change of the address
    /// before it is confirmed. Each confirmation link records the value it
    /// was sent under, so every link sent to the current address works and
    /// links to an earlier address (or of an earlier registration of the
    /// account) do not.
    #[serde(default)]
    pub address_nonce: String,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub confirmed_at: Option<OffsetDateTime>,
    /// When identification is due: shown to the resident as "ready at".
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub ready_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub identified_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<RejectionReason>,
    /// Where the resident registered, for links in later letters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cabinet_url: Option<String>,
    /// Hash of the password reset token now valid (one at a time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_token_hash: Option<String>,
    /// Sessions of an older epoch are ended; a password reset moves it on.
    #[serde(default)]
    pub session_epoch: u64,
    /// The consent to personal data processing given at registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
    /// Set when mail to the address bounced or was reported as spam.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_undeliverable: Option<Undeliverable>,
    /// While the address is unconfirmed: when the registration expires (Unix
    /// seconds, the table's TTL). Confirmation removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Set by an import that found another payer on the account: the stage
    /// is "suspended" until identification decides again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_for: Option<String>,
    /// The accounts added to the cabinet after registration, each a
    /// [`LinkedAccount`] of its own (a string set in DynamoDB, no order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked_accounts: Vec<AccountNumber>,
}

/// The stage of one account in a cabinet, as the resident sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStage {
    AwaitingEmailConfirmation,
    AwaitingIdentification,
    /// The payer changed in the billing data; identification decides again.
    Suspended,
    Active,
    Rejected,
}

impl AccountStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingEmailConfirmation => "awaiting_email_confirmation",
            Self::AwaitingIdentification => "awaiting_identification",
            Self::Suspended => "suspended",
            Self::Active => "active",
            Self::Rejected => "rejected",
        }
    }

    fn of(status: ResidentStatus, suspended: bool) -> Self {
        match status {
            ResidentStatus::AwaitingEmailConfirmation => Self::AwaitingEmailConfirmation,
            ResidentStatus::AwaitingIdentification if suspended => Self::Suspended,
            ResidentStatus::AwaitingIdentification => Self::AwaitingIdentification,
            ResidentStatus::Active => Self::Active,
            ResidentStatus::Rejected => Self::Rejected,
        }
    }
}

/// An account added to a cabinet after registration (`LINK#<account>`):
/// the person is the resident who registered with `person`. It goes
/// through identification of its own, with the fields a resident keeps
/// for their first account, under the same names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkedAccount {
    pub account: AccountNumber,
    /// The account the person registered with: the key of their cabinet.
    pub person: AccountNumber,
    pub full_name: FullName,
    pub status: ResidentStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub linked_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub ready_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub identified_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<RejectionReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_for: Option<String>,
}

/// One account of a cabinet and where its identification stands: the
/// resident's first account or a linked one, seen alike.
#[derive(Debug, Clone)]
pub struct AccountInCabinet {
    pub account: AccountNumber,
    pub full_name: FullName,
    pub status: ResidentStatus,
    pub stage: AccountStage,
    pub ready_at: Option<OffsetDateTime>,
    pub rejection_reason: Option<RejectionReason>,
    /// False for the account the resident registered with.
    pub linked: bool,
    /// When the account came into the cabinet (registered or linked): it
    /// tells this holding of the account from a later one.
    pub since: OffsetDateTime,
}

impl AccountInCabinet {
    fn new(
        account: &AccountNumber,
        full_name: &FullName,
        status: ResidentStatus,
        suspended: bool,
        linked: bool,
    ) -> Self {
        Self {
            account: account.clone(),
            full_name: full_name.clone(),
            status,
            stage: AccountStage::of(status, suspended),
            ready_at: None,
            rejection_reason: None,
            linked,
            since: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn with(
        self,
        ready_at: Option<OffsetDateTime>,
        rejection_reason: Option<RejectionReason>,
        since: OffsetDateTime,
    ) -> Self {
        Self { ready_at, rejection_reason, since, ..self }
    }
}

impl Resident {
    /// The account the resident registered with.
    pub fn first_account(&self) -> AccountInCabinet {
        AccountInCabinet::new(&self.account, &self.full_name, self.status, self.suspended_for.is_some(), false).with(
            self.ready_at,
            self.rejection_reason,
            self.registered_at,
        )
    }
}

impl LinkedAccount {
    pub fn in_cabinet(&self) -> AccountInCabinet {
        AccountInCabinet::new(&self.account, &self.full_name, self.status, self.suspended_for.is_some(), true).with(
            self.ready_at,
            self.rejection_reason,
            self.linked_at,
        )
    }
}

/// The 152-FZ consent record: when, to which version of the policy, from
/// which address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    #[serde(with = "time::serde::rfc3339")]
    pub given_at: OffsetDateTime,
    pub policy_version: String,
    pub ip: String,
}

/// Why mail to a resident's address does not arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UndeliverableReason {
    /// The receiving server said the address does not exist (hard bounce).
    Bounced,
    /// The resident's mail service reported our letter as spam.
    Complained,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undeliverable {
    pub reason: UndeliverableReason,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[cfg(test)]
impl Resident {
    /// A resident of the sample account (Иванов Иван Иванович, 100200300)
    /// at `status`, registered at `registered_at`, for unit tests.
    pub(crate) fn sample(status: ResidentStatus, registered_at: OffsetDateTime) -> Self {
        Resident {
            account: AccountNumber::parse("100200300").unwrap(),
            full_name: FullName::parse("Иванов Иван Иванович").unwrap(),
            phone: Phone::parse("+7 912 345-67-89").unwrap(),
            email: Email::parse("ivanov@mail.ru").unwrap(),
            password_hash: String::new(),
            status,
            registered_at,
            address_nonce: String::new(),
            confirmed_at: None,
            ready_at: None,
            identified_at: None,
            rejection_reason: None,
            cabinet_url: None,
            reset_token_hash: None,
            session_epoch: 0,
            consent: None,
            email_undeliverable: None,
            expires_at: None,
            suspended_for: None,
            linked_accounts: Vec::new(),
        }
    }
}
