//! The account page: what the billing data says about the resident's account.

use time::OffsetDateTime;

use crate::clock;
use crate::domain::{AccountNumber, Money, ResidentStatus, SecretToken};
use crate::errors::Unexpected;
use crate::services::Services;

#[derive(Debug, Clone)]
pub struct AccountView {
    pub account: AccountNumber,
    pub full_name: String,
    pub address: Option<String>,
    pub balance: Option<Money>,
    /// When the billing data was last loaded.
    pub data_as_of: Option<OffsetDateTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no live session")]
    NotAuthenticated,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// The account of a session cookie's token.
#[tracing::instrument(skip_all)]
pub async fn view(services: &Services, presented: Option<&str>) -> Result<AccountView, AccountError> {
    let token = presented.and_then(SecretToken::from_presented).ok_or(AccountError::NotAuthenticated)?;
    let account =
        services.store.session_account(&token.hash(), clock::now()).await?.ok_or(AccountError::NotAuthenticated)?;
    let resident = services.store.resident(&account).await?.ok_or(AccountError::NotAuthenticated)?;
    if resident.status != ResidentStatus::Active {
        return Err(AccountError::NotAuthenticated);
    }
    let billing = services.store.billing_account(&account).await?;
    Ok(match billing {
        Some(b) => AccountView {
            account,
            full_name: b.full_name.to_string(),
            address: b.address,
            balance: b.balance,
            data_as_of: Some(b.updated_at),
        },
        None => AccountView {
            account,
            full_name: resident.full_name.to_string(),
            address: None,
            balance: None,
            data_as_of: None,
        },
    })
}
