//! The account page: what the billing data says about each account of the
//! resident's cabinet.

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::domain::{AccountInCabinet, AccountNumber, Money, ResidentStatus, Undeliverable};
use crate::errors::Unexpected;
use crate::services::Services;
use crate::usecases::login::session_resident_with;
use crate::usecases::{cabinet, identify};

/// One account of the cabinet with its billing data, shown once the
/// account is identified (active).
#[derive(Debug, Clone)]
pub struct AccountLine {
    pub stage: AccountInCabinet,
    /// The payer as the billing data names them (as typed until active).
    pub full_name: String,
    pub address: Option<String>,
    pub balance: Option<Money>,
    /// When the billing data was last loaded.
    pub data_as_of: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct AccountView {
    /// The first active account (the first account when none is).
    pub main: AccountLine,
    /// Every account of the cabinet: the first, then those added.
    pub accounts: Vec<AccountLine>,
    /// Why letters to the resident's address do not arrive, if they do not.
    pub undeliverable: Option<Undeliverable>,
    pub masked_email: String,
}

impl AccountView {
    pub fn account(&self) -> &AccountNumber {
        &self.main.stage.account
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("no live session")]
    NotAuthenticated,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

/// The cabinet of a session cookie's token.
#[tracing::instrument(skip_all)]
pub async fn view(services: &Services, presented: Option<&str>) -> Result<AccountView, AccountError> {
    // The first account's billing data is read with the resident: for a
    // cabinet of one account, that is every read the page needs.
    let first_billing = |account: AccountNumber| async move { services.store.billing.get(&account).await };
    let (resident, first_billing) =
        session_resident_with(services, presented, first_billing).await?.ok_or(AccountError::NotAuthenticated)?;
    let base_url = cabinet::base_url(services, &resident);
    let mut stages = Vec::new();
    for stage in cabinet::accounts(services, &resident).await? {
        // An added account whose job was lost is identified now, as login
        // does for the first one; reads nothing unless it is overdue.
        stages.push(identify::catch_up(services, stage, &base_url).await);
    }
    let active: Vec<AccountNumber> =
        stages.iter().filter(|a| a.status == ResidentStatus::Active).map(|a| a.account.clone()).collect();
    let mut billing = match (active.as_slice(), first_billing) {
        ([only], Some(first)) if first.account == *only => HashMap::from([(first.account.to_string(), first)]),
        (several, _) => services.store.billing.get_many(several).await?,
    };
    let accounts: Vec<AccountLine> = stages
        .into_iter()
        .map(|stage| match billing.remove(stage.account.as_str()).filter(|_| stage.status == ResidentStatus::Active) {
            Some(b) => AccountLine {
                full_name: b.full_name.to_string(),
                address: b.address,
                balance: b.balance,
                data_as_of: Some(b.updated_at),
                stage,
            },
            None => AccountLine {
                full_name: stage.full_name.to_string(),
                address: None,
                balance: None,
                data_as_of: None,
                stage,
            },
        })
        .collect();
    let main = accounts.iter().find(|a| a.stage.status == ResidentStatus::Active).or(accounts.first()).cloned();
    let main = main.ok_or_else(|| Unexpected::new("showing a cabinet", std::io::Error::other("no account")))?;
    Ok(AccountView {
        main,
        accounts,
        undeliverable: resident.email_undeliverable.clone(),
        masked_email: resident.email.masked(),
    })
}
