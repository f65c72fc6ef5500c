//! Accounts added to a cabinet after registration: one `LINK#<account>`
//! item each, and the set `linked_accounts` on the resident who holds them,
//! changed together in one transaction. An account is held by a resident
//! (`RESIDENT#<account>`) or by a link, never both: each write checks the
//! other item.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Update};

use super::transaction::{Role, Transaction};
use super::{Item, Key, Table, from_item, s, to_item};
use crate::domain::{AccountNumber, LinkedAccount, Resident, ResidentStatus};
use crate::errors::{Context, Unexpected};

/// Why an account was not added to a cabinet.
#[derive(Debug, thiserror::Error)]
pub enum AddLinkError {
    /// A resident registered with it, or it is in another cabinet (or in
    /// this one already).
    #[error("the account is held already")]
    AccountTaken,
    /// The cabinet's resident is gone or has not confirmed an address.
    #[error("the cabinet cannot take accounts")]
    CabinetClosed,
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}

#[derive(Clone)]
pub struct Links {
    table: Table,
}

impl Links {
    pub(super) fn new(table: Table) -> Self {
        Self { table }
    }

    /// The linked accounts of `resident`, in the order they were added, in
    /// one round trip.
    #[tracing::instrument(skip_all)]
    pub async fn of(&self, resident: &Resident) -> Result<Vec<LinkedAccount>, Unexpected> {
        if resident.linked_accounts.is_empty() {
            return Ok(Vec::new());
        }
        let keys =
            resident.linked_accounts.iter().map(|account| Item::from([("pk".to_owned(), Key::Link(account).value())]));
        let mut links = Vec::new();
        for item in self.table.batch_get(keys.collect(), "reading linked accounts").await? {
            let link: LinkedAccount = from_item(item)?;
            // The set and the links change together; a link counts only
            // while it names this cabinet all the same.
            if link.person == resident.account {
                links.push(link);
            }
        }
        links.sort_by(|a, b| a.linked_at.cmp(&b.linked_at).then_with(|| a.account.as_str().cmp(b.account.as_str())));
        Ok(links)
    }

    /// Adds `link` to its person's cabinet: the link, the account in the
    /// resident's set, and the check that no resident registered with the
    /// account, in one transaction; of concurrent additions and
    /// registrations of one account exactly one wins.
    #[tracing::instrument(skip_all)]
    pub async fn add(&self, link: &LinkedAccount) -> Result<(), AddLinkError> {
        let table = &self.table;
        let cabinet = Update::builder()
            .table_name(&table.name)
            .key("pk", Key::Resident(&link.person).value())
            .condition_expression("attribute_exists(pk) AND #status <> :unconfirmed")
            .update_expression("ADD linked_accounts :account")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":unconfirmed", s(ResidentStatus::AwaitingEmailConfirmation.as_str()))
            .expression_attribute_values(":account", AttributeValue::Ss(vec![link.account.to_string()]))
            .build()
            .context("building an account link")?;
        let now = crate::clock::now().unix_timestamp();
        let transaction = Transaction::default()
            .update(Role::Resident, cabinet)
            .put_new(Role::AccountLink, table, to_item(&Key::Link(&link.account), link)?)?
            .check_absent_or_expired(Role::AccountHeld, table, &Key::Resident(&link.account), now)?;
        match transaction.run(table, "linking an account").await? {
            Ok(()) => Ok(()),
            Err(refused) if refused.failed(Role::Resident) => Err(AddLinkError::CabinetClosed),
            Err(_) => Err(AddLinkError::AccountTaken),
        }
    }

    /// Removes `account` from the cabinet of `person`: the link and the
    /// account in the set, in one transaction. False when the account is
    /// not linked to that cabinet (removed already).
    #[tracing::instrument(skip_all)]
    pub async fn remove(&self, person: &AccountNumber, account: &AccountNumber) -> Result<bool, Unexpected> {
        let table = &self.table;
        let link = Delete::builder()
            .table_name(&table.name)
            .key("pk", Key::Link(account).value())
            .condition_expression("person = :person")
            .expression_attribute_values(":person", s(person.as_str()))
            .build()
            .context("building an account unlink")?;
        let cabinet = Update::builder()
            .table_name(&table.name)
            .key("pk", Key::Resident(person).value())
            .condition_expression("attribute_exists(pk)")
            .update_expression("DELETE linked_accounts :account")
            .expression_attribute_values(":account", AttributeValue::Ss(vec![account.to_string()]))
            .build()
            .context("building an account unlink")?;
        let transaction = Transaction::default().delete_where(Role::AccountLink, link).update(Role::Resident, cabinet);
        Ok(transaction.run(table, "unlinking an account").await?.is_ok())
    }

    /// Removes the account `person` registered with from their cabinet: the
    /// cabinet moves to `successor`, one of its linked accounts, which
    /// becomes its first. In one transaction: the resident item under the
    /// successor's number (login data kept, the successor's stage), the
    /// successor's link and the old resident item deleted, the e-mail claim
    /// and every other link pointed at the new number. Only while the
    /// resident is as read (same address, password and session epoch) and
    /// the links still theirs; false otherwise. Sessions, devices and links
    /// issued under the old number end with it.
    #[tracing::instrument(skip_all)]
    pub async fn move_cabinet(
        &self,
        person: &Resident,
        successor: &LinkedAccount,
        others: &[LinkedAccount],
    ) -> Result<bool, Unexpected> {
        let table = &self.table;
        let moved = Resident {
            account: successor.account.clone(),
            full_name: successor.full_name.clone(),
            status: successor.status,
            ready_at: successor.ready_at,
            identified_at: successor.identified_at,
            rejection_reason: successor.rejection_reason,
            suspended_for: successor.suspended_for.clone(),
            linked_accounts: others.iter().map(|l| l.account.clone()).collect(),
            ..person.clone()
        };
        let mut item = to_item(&Key::Resident(&moved.account), &moved)?;
        if !moved.linked_accounts.is_empty() {
            let set = moved.linked_accounts.iter().map(ToString::to_string).collect();
            item.insert("linked_accounts".to_owned(), AttributeValue::Ss(set));
        }
        let old = Delete::builder()
            .table_name(&table.name)
            .key("pk", Key::Resident(&person.account).value())
            .condition_expression("email = :email AND password_hash = :phc AND session_epoch = :epoch")
            .expression_attribute_values(":email", s(person.email.as_str()))
            .expression_attribute_values(":phc", s(person.password_hash.as_str()))
            .expression_attribute_values(":epoch", super::n(i64::try_from(person.session_epoch).unwrap_or(i64::MAX)))
            .build()
            .context("building a cabinet move")?;
        let link = Delete::builder()
            .table_name(&table.name)
            .key("pk", Key::Link(&successor.account).value())
            .condition_expression("person = :person")
            .expression_attribute_values(":person", s(person.account.as_str()))
            .build()
            .context("building a cabinet move")?;
        let repoint = |key: Key<'_>, attribute: &str| {
            Update::builder()
                .table_name(&table.name)
                .key("pk", key.value())
                .condition_expression("#of = :old")
                .update_expression("SET #of = :new")
                .expression_attribute_names("#of", attribute)
                .expression_attribute_values(":old", s(person.account.as_str()))
                .expression_attribute_values(":new", s(successor.account.as_str()))
                .build()
                .context("building a cabinet move")
        };
        let mut transaction = Transaction::default()
            .put_new(Role::Resident, table, item)?
            .delete_where(Role::AccountLink, link)
            .delete_where(Role::Resident, old)
            .update(Role::Claim, repoint(Key::Email(&person.email), "account")?);
        for other in others {
            transaction = transaction.update(Role::AccountLink, repoint(Key::Link(&other.account), "person")?);
        }
        Ok(transaction.run(table, "moving a cabinet to another account").await?.is_ok())
    }
}
