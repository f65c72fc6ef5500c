//! The billing accounts, in their own table (key `account`), as the import
//! loads them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::{Table, backoff, from_item, s};
use crate::domain::{AccountNumber, BillingAccount};
use crate::errors::{AwsContext, Context, Unexpected};

#[derive(Clone)]
pub struct Billing {
    table: Table,
}

impl Billing {
    pub(super) fn new(table: Table) -> Self {
        Self { table }
    }

    #[tracing::instrument(skip_all)]
    pub async fn get(&self, account: &AccountNumber) -> Result<Option<BillingAccount>, Unexpected> {
        self.table.get_raw("account", s(account.as_str())).await?.map(from_item).transpose()
    }

    /// Billing accounts, 100 per request (retrying unprocessed keys).
    #[tracing::instrument(skip_all, fields(count = accounts.len()))]
    pub async fn get_many(&self, accounts: &[AccountNumber]) -> Result<HashMap<String, BillingAccount>, Unexpected> {
        let mut found = HashMap::new();
        if accounts.is_empty() {
            return Ok(found);
        }
        let keys = accounts.iter().map(|a| HashMap::from([("account".to_owned(), s(a.as_str()))])).collect();
        for item in self.table.batch_get(keys, "reading billing accounts").await? {
            let account: BillingAccount = from_item(item)?;
            found.insert(account.account.to_string(), account);
        }
        Ok(found)
    }

    /// Writes up to 25 billing accounts in one request, retrying what
    /// DynamoDB leaves unprocessed with exponential backoff and jitter.
    #[tracing::instrument(skip_all, fields(count = accounts.len()))]
    pub async fn put_many(&self, accounts: &[BillingAccount]) -> Result<(), Unexpected> {
        let name = &self.table.name;
        let mut writes = Vec::with_capacity(accounts.len());
        for account in accounts {
            let item = serde_dynamo::to_item(account).context("mapping a billing account")?;
            let put = PutRequest::builder().set_item(Some(item)).build().context("building a batch write")?;
            writes.push(WriteRequest::builder().put_request(put).build());
        }
        let mut attempt = 0;
        while !writes.is_empty() {
            let output = self
                .table
                .client
                .batch_write_item()
                .request_items(name, writes)
                .send()
                .await
                .aws_context("writing billing accounts")?;
            writes = output.unprocessed_items.and_then(|mut u| u.remove(name)).unwrap_or_default();
            if !writes.is_empty() {
                attempt += 1;
                backoff(attempt).await?;
            }
        }
        Ok(())
    }
}
