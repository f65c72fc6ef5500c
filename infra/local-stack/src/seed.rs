//! Loads the sample billing file shipped with the local stack, through the
//! same domain types and store the functions use.

use std::path::Path;

use cabinet::clock;
use cabinet::domain::{AccountNumber, BillingAccount, FullName, Money};
use cabinet::store::Store;
use serde::Deserialize;

use crate::StackError;

#[derive(Deserialize)]
struct Row {
    account: String,
    full_name: String,
    address: String,
    /// Kopecks.
    balance: i64,
}

pub async fn load_sample(store: &Store, path: &Path) -> Result<usize, StackError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_path(path)
        .map_err(|e| StackError::Seed(format!("{}: {e}", path.display())))?;
    let mut loaded = 0;
    for row in reader.deserialize::<Row>() {
        let row = row.map_err(|e| StackError::Seed(e.to_string()))?;
        let account = BillingAccount {
            account: AccountNumber::parse(&row.account)
                .map_err(|e| StackError::Seed(format!("{}: {e}", row.account)))?,
            full_name: FullName::parse(&row.full_name)
                .map_err(|e| StackError::Seed(format!("{}: {e}", row.account)))?,
            address: Some(row.address).filter(|a| !a.is_empty()),
            balance: Some(Money(row.balance)),
            updated_at: clock::now(),
        };
        store.put_billing_account(&account).await.map_err(|e| StackError::Seed(e.to_string()))?;
        loaded += 1;
    }
    Ok(loaded)
}
