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

impl RejectionReason {
    /// What the resident is told, in Russian.
    pub fn message(self) -> &'static str {
        match self {
            RejectionReason::AccountVanished => {
                "Лицевой счёт больше не найден в данных ООО «Потенциал». Обратитесь в офис управляющей компании — мы проверим данные."
            }
            RejectionReason::PayerChanged => {
                "В данных ООО «Потенциал» по этому лицевому счёту теперь указан другой плательщик. Обратитесь в офис управляющей компании, чтобы обновить данные."
            }
        }
    }
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
    /// Hash of the confirmation token now valid; replaced when a new letter
    /// is sent, so older links stop working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_token_hash: Option<String>,
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
}
