//! The account page: what the billing data says about the resident's account.

use time::OffsetDateTime;

use crate::domain::{AccountNumber, Money, Undeliverable};
use crate::errors::Unexpected;
use crate::services::Services;
use crate::usecases::login::session_resident;

#[derive(Debug, Clone)]
pub struct AccountView {
    pub account: AccountNumber,
    pub full_name: String,
    pub address: Option<String>,
    pub balance: Option<Money>,
    /// When the billing data was last loaded.
    pub data_as_of: Option<OffsetDateTime>,
    /// Why letters to the resident's address do not arrive, if they do not.
    pub undeliverable: Option<Undeliverable>,
    pub masked_email: String,
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
    let resident = session_resident(services, presented).await?.ok_or(AccountError::NotAuthenticated)?;
    let account = resident.account.clone();
    let undeliverable = resident.email_undeliverable.clone();
    let masked_email = resident.email.masked();
    let billing = services.store.billing.get(&account).await?;
    Ok(match billing {
        Some(b) => AccountView {
            account,
            full_name: b.full_name.to_string(),
            address: b.address,
            balance: b.balance,
            data_as_of: Some(b.updated_at),
            undeliverable,
            masked_email,
        },
        None => AccountView {
            account,
            full_name: resident.full_name.to_string(),
            address: None,
            balance: None,
            data_as_of: None,
            undeliverable,
            masked_email,
        },
    })
}
