//! DynamoDB transactions whose items carry a role: a cancellation is read
//! by what each item stands for, never by its position, and only a failed
//! condition is an answer about the data. A conflict with another
//! transaction in flight, or throttling, says nothing about the data: it is
//! retried, and when it lasts it is a transient failure (503), never a
//! business refusal such as "link already used".

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};

use super::{Item, Key, Table, backoff, n};
use crate::errors::{Context, Unexpected};

/// What an item of a transaction stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The resident item (its stage, address, password, reset link, epoch).
    Resident,
    /// The claim of the address the resident takes (or keeps).
    Claim,
    /// The claim of the address the resident leaves (deleted, no condition).
    ReleasedClaim,
    /// A link used up or issued (confirmation, reset, address change, cancel).
    Link,
    /// A second link issued with the first (the cancel link of a change).
    CancelLink,
    /// The token of the registration status cookie.
    StatusCookie,
    /// The other item that could hold the account (its resident, or its
    /// link to another cabinet), checked absent.
    AccountHeld,
    /// An account linked to a cabinet (`LINK#`).
    AccountLink,
    /// The audit record of the action (a new item, in the audit table).
    Audit,
    /// A rate limit counter counted only while within its limit.
    Counter,
    /// A second such counter (a budget), counted with the first.
    Budget,
    /// A login lock, changed only while its attempts are as read.
    Lock,
    /// A new login session.
    Session,
    /// A new device record (the browser's device cookie).
    Device,
    /// The session a new one replaces (deleted, no condition).
    EndedSession,
}

/// Why one item of a cancelled transaction did not apply, as DynamoDB
/// reports it in `CancellationReasons`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// The item was fine; another one cancelled the transaction.
    None,
    /// Its condition did not hold: an answer about the data.
    ConditionFailed,
    /// Another transaction was changing the item at the same moment.
    Conflict,
    /// The table or the item was throttled.
    Throttled,
    /// Anything else (validation, size): a bug of ours.
    Other,
}

impl Reason {
    fn of(code: &str) -> Self {
        match code {
            "" | "None" => Self::None,
            "ConditionalCheckFailed" => Self::ConditionFailed,
            "TransactionConflict" => Self::Conflict,
            "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded" => Self::Throttled,
            _ => Self::Other,
        }
    }
}

/// A transaction that did not apply because conditions failed: which roles'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refused(Vec<Role>);

impl Refused {
    /// Whether the condition of the item with `role` failed.
    pub(super) fn failed(&self, role: Role) -> bool {
        self.0.contains(&role)
    }
}

/// What to do with a cancelled transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Conditions failed: the answer about the data, by role.
    Refused(Refused),
    /// Only conflicts or throttling: try again.
    Retry,
    /// Something else: a failure of ours.
    Unexpected,
}

/// Reads the reasons of a cancellation (one per item, in the order the
/// items were sent) by the roles of those items.
fn verdict(roles: &[Role], codes: &[&str]) -> Verdict {
    let reasons: Vec<(Role, Reason)> = roles.iter().copied().zip(codes.iter().map(|c| Reason::of(c))).collect();
    let failed: Vec<Role> =
        reasons.iter().filter(|(_, reason)| *reason == Reason::ConditionFailed).map(|(role, _)| *role).collect();
    if !failed.is_empty() {
        return Verdict::Refused(Refused(failed));
    }
    if reasons.iter().any(|(_, reason)| matches!(reason, Reason::Conflict | Reason::Throttled)) {
        return Verdict::Retry;
    }
    Verdict::Unexpected
}

/// The reason codes of a cancelled transaction; `None` when the error is
/// something else.
fn cancellation_codes(error: &SdkError<TransactWriteItemsError>) -> Option<Vec<String>> {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            Some(cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or_default().to_owned()).collect())
        }
        _ => None,
    }
}

/// The items of one transaction, each with its role.
#[derive(Default)]
pub(super) struct Transaction {
    items: Vec<(Role, TransactWriteItem)>,
}

impl Transaction {
    pub(super) fn update(mut self, role: Role, update: Update) -> Self {
        self.items.push((role, TransactWriteItem::builder().update(update).build()));
        self
    }

    /// A put of an item that must be new.
    pub(super) fn put_new(mut self, role: Role, table: &Table, item: Item) -> Result<Self, Unexpected> {
        let put = Put::builder()
            .table_name(&table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .context("building a transactional put")?;
        self.items.push((role, TransactWriteItem::builder().put(put).build()));
        Ok(self)
    }

    /// The audit record of the transaction's action.
    pub(super) fn audit(self, audit: super::AuditItem) -> Result<Self, Unexpected> {
        self.put_new(Role::Audit, &audit.table, audit.item)
    }

    /// A put of an item that may exist only as an expired unconfirmed
    /// registration (or its claim), which it replaces.
    pub(super) fn put_replacing_expired(
        mut self,
        role: Role,
        table: &Table,
        item: Item,
        now: i64,
    ) -> Result<Self, Unexpected> {
        let put = Put::builder()
            .table_name(&table.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", super::TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .build()
            .context("building a transactional put")?;
        self.items.push((role, TransactWriteItem::builder().put(put).build()));
        Ok(self)
    }

    /// A check, writing nothing, that `key` holds nothing but an expired
    /// unconfirmed registration.
    pub(super) fn check_absent_or_expired(
        mut self,
        role: Role,
        table: &Table,
        key: &Key<'_>,
        now: i64,
    ) -> Result<Self, Unexpected> {
        let check = ConditionCheck::builder()
            .table_name(&table.name)
            .key("pk", key.value())
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", super::TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .build()
            .context("building a transactional check")?;
        self.items.push((role, TransactWriteItem::builder().condition_check(check).build()));
        Ok(self)
    }

    /// A check built by the caller, writing nothing.
    pub(super) fn check(mut self, role: Role, check: ConditionCheck) -> Self {
        self.items.push((role, TransactWriteItem::builder().condition_check(check).build()));
        self
    }

    /// A delete built by the caller, with its own condition.
    pub(super) fn delete_where(mut self, role: Role, delete: Delete) -> Self {
        self.items.push((role, TransactWriteItem::builder().delete(delete).build()));
        self
    }

    /// A delete of `key`; with `must_exist`, the transaction fails when the
    /// item is gone (a link used by someone else first).
    pub(super) fn delete(
        mut self,
        role: Role,
        table: &Table,
        key: &Key<'_>,
        must_exist: bool,
    ) -> Result<Self, Unexpected> {
        let mut delete = Delete::builder().table_name(&table.name).key("pk", key.value());
        if must_exist {
            delete = delete.condition_expression("attribute_exists(pk)");
        }
        let delete = delete.build().context("building a transactional delete")?;
        self.items.push((role, TransactWriteItem::builder().delete(delete).build()));
        Ok(self)
    }

    /// Runs the transaction: `Ok(Ok(()))` when it applied, `Ok(Err(_))`
    /// when conditions failed (by role). A conflict with another
    /// transaction in flight (two tabs confirming at once) or throttling is
    /// tried again with backoff; when it lasts, a transient failure.
    pub(super) async fn run(self, table: &Table, context: &'static str) -> Result<Result<(), Refused>, Unexpected> {
        let (roles, items): (Vec<Role>, Vec<TransactWriteItem>) = self.items.into_iter().unzip();
        let mut attempt = 0;
        loop {
            let result = table.client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            let Err(error) = result else {
                return Ok(Ok(()));
            };
            let Some(codes) = cancellation_codes(&error) else {
                return Err(Unexpected::aws(context, error));
            };
            let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
            match verdict(&roles, &codes) {
                Verdict::Refused(refused) => return Ok(Err(refused)),
                Verdict::Retry => {
                    attempt += 1;
                    tracing::info!(context, attempt, reasons = ?codes, "transaction conflicted: trying again");
                    if backoff(attempt).await.is_err() {
                        return Err(Unexpected::busy(context, "TransactionConflict"));
                    }
                }
                Verdict::Unexpected => return Err(Unexpected::aws(context, error)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESET: [Role; 2] = [Role::Resident, Role::Link];

    #[test]
    fn a_failed_condition_is_read_by_the_role_of_its_item() {
        let Verdict::Refused(refused) = verdict(&RESET, &["None", "ConditionalCheckFailed"]) else {
            panic!("a failed condition is a refusal");
        };
        assert!(refused.failed(Role::Link));
        assert!(!refused.failed(Role::Resident));
        let roles = [Role::Resident, Role::Claim, Role::StatusCookie];
        let Verdict::Refused(refused) = verdict(&roles, &["None", "ConditionalCheckFailed", "None"]) else {
            panic!("a failed condition is a refusal");
        };
        assert!(refused.failed(Role::Claim));
        assert!(!refused.failed(Role::Resident) && !refused.failed(Role::StatusCookie));
    }

    #[test]
    fn a_conflict_or_throttling_is_retried_never_a_refusal() {
        assert_eq!(verdict(&RESET, &["TransactionConflict", "None"]), Verdict::Retry);
        assert_eq!(verdict(&RESET, &["None", "TransactionConflict"]), Verdict::Retry);
        assert_eq!(verdict(&RESET, &["ThrottlingError", "None"]), Verdict::Retry);
        assert_eq!(verdict(&RESET, &["None", "ProvisionedThroughputExceeded"]), Verdict::Retry);
    }

    #[test]
    fn a_failed_condition_wins_over_a_conflict_elsewhere() {
        let Verdict::Refused(refused) = verdict(&RESET, &["TransactionConflict", "ConditionalCheckFailed"]) else {
            panic!("a failed condition is an answer about the data");
        };
        assert!(refused.failed(Role::Link) && !refused.failed(Role::Resident));
    }

    #[test]
    fn any_other_reason_is_a_failure_of_ours() {
        assert_eq!(verdict(&RESET, &["ValidationError", "None"]), Verdict::Unexpected);
        assert_eq!(verdict(&RESET, &["None", "None"]), Verdict::Unexpected);
        assert_eq!(verdict(&RESET, &[]), Verdict::Unexpected);
    }
}
