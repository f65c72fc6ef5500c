//! Counters and locks: rate limit counters
//! (`RATE#<action>#<subject>#<window start>`, atomic, with TTL) and the
//! attempts of a subject with the lock they earned (`LOCK#<subject>`,
//! compare-and-swap). The thresholds are `limits.rs`'s.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, ReturnValue, Update};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::sessions::{device_item, session_item};
use super::transaction::{Role, Transaction};
use super::{
    AuditItem, DeviceRecord, Key, SessionRecord, TTL_ATTRIBUTE, Table, applied, instant, n, past_transactions, s,
};
use crate::domain::TokenHash;
use crate::errors::{AwsContext, Context, Unexpected};
use crate::limits::{Action, Subject};

/// Attempts (of logging in, or of anything that checks a password) of one
/// subject and the lock they earned, as stored under `LOCK#<subject>`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Attempts in a row not ended by a success (counted before the
    /// password is verified).
    #[serde(default)]
    pub failures: u32,
    /// Until when (Unix milliseconds; stored as an [`instant`]) no attempt
    /// is verified; 0 for none.
    #[serde(default, with = "instant::millis")]
    pub locked_until_ms: i64,
    /// When the attempts are forgotten (Unix seconds, TTL).
    #[serde(default)]
    pub expires_at: i64,
}

#[derive(Clone)]
pub struct Counters {
    table: Table,
}

/// The start of the window of `window` that `at` falls in (Unix seconds),
/// and the window's length in seconds.
fn window_of(at: OffsetDateTime, window: std::time::Duration) -> (i64, i64) {
    let window_seconds = i64::try_from(window.as_secs().max(1)).unwrap_or(i64::MAX);
    (at.unix_timestamp() - at.unix_timestamp().rem_euclid(window_seconds), window_seconds)
}

impl Counters {
    pub(super) fn new(table: Table) -> Self {
        Self { table }
    }

    /// Counts one attempt of `action` by `subject` in the current window
    /// (an atomic counter with TTL, no read-then-write) and says whether it
    /// is within `limit`; when not, how many seconds until the window ends.
    #[tracing::instrument(skip_all, fields(action = action.as_str()))]
    pub async fn count(
        &self,
        action: Action,
        subject: &Subject,
        window: std::time::Duration,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Result<(), u64>, Unexpected> {
        let (start, window_seconds) = window_of(now, window);
        let end = start + window_seconds;
        let output = self
            .table
            .update(&Key::Rate { action, subject, window_start: start })
            .update_expression("ADD hits :one SET #ttl = :end")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":end", n(end))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .aws_context("counting an attempt")?;
        let hits: u32 = output
            .attributes
            .and_then(|a| a.get("hits").and_then(|h| h.as_n().ok()).and_then(|n| n.parse().ok()))
            .unwrap_or(u32::MAX);
        Ok(if hits <= limit { Ok(()) } else { Err(u64::try_from(end - now.unix_timestamp()).unwrap_or(1).max(1)) })
    }

    /// Counts one attempt under two counters together, each only while
    /// within its limit (`(action, subject, window, limit)`): both or
    /// neither, so an attempt refused by one never takes from the other,
    /// not even for a moment. `Ok(Err(first))`: `first` is true when the
    /// first counter refused it (with the seconds until its window ends),
    /// false when only the second did.
    #[tracing::instrument(skip_all)]
    pub async fn count_both(
        &self,
        first: (Action, &Subject, std::time::Duration, u32),
        second: (Action, &Subject, std::time::Duration, u32),
        now: OffsetDateTime,
    ) -> Result<Result<(), (bool, u64)>, Unexpected> {
        let update = |(action, subject, window, limit): (Action, &Subject, std::time::Duration, u32)| {
            let (start, window_seconds) = window_of(now, window);
            let update = Update::builder()
                .table_name(&self.table.name)
                .key("pk", Key::Rate { action, subject, window_start: start }.value())
                .condition_expression("attribute_not_exists(hits) OR hits < :limit")
                .update_expression("ADD hits :one SET #ttl = :end")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(i64::from(limit)))
                .expression_attribute_values(":end", n(start + window_seconds))
                .build()
                .context("building a counter's update")?;
            Ok::<_, Unexpected>((update, start + window_seconds))
        };
        let (first_update, first_end) = update(first)?;
        let (second_update, second_end) = update(second)?;
        let transaction =
            Transaction::default().update(Role::Counter, first_update).update(Role::Budget, second_update);
        let until = |end: i64| u64::try_from(end - now.unix_timestamp()).unwrap_or(1).max(1);
        Ok(match transaction.run(&self.table, "counting an attempt").await? {
            Ok(()) => Ok(()),
            Err(refused) if refused.failed(Role::Counter) => Err((true, until(first_end))),
            Err(_) => Err((false, until(second_end))),
        })
    }

    /// Gives back one attempt counted by [`Counters::count`] at
    /// `counted_at`, in that window (an attempt that turned out not to
    /// count, such as a name check that matched, or a request that failed
    /// on our side).
    #[tracing::instrument(skip_all, fields(action = action.as_str()))]
    pub async fn refund(
        &self,
        action: Action,
        subject: &Subject,
        window: std::time::Duration,
        counted_at: OffsetDateTime,
    ) -> Result<(), Unexpected> {
        let (start, _) = window_of(counted_at, window);
        let result = self
            .table
            .update(&Key::Rate { action, subject, window_start: start })
            .condition_expression("hits > :zero")
            .update_expression("ADD hits :minus")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":minus", n(-1))
            .send()
            .await;
        // None left in that window (its item gone, or given back already)
        // is no failure.
        applied(result, "giving back an attempt").map(|_| ())
    }

    /// The attempts of `subject` and its lock, as stored (possibly past
    /// `expires_at`: DynamoDB deletes items only eventually).
    #[tracing::instrument(skip_all)]
    pub async fn lock_record(&self, subject: &Subject) -> Result<Option<LockRecord>, Unexpected> {
        self.table.read(&Key::Lock(subject)).await
    }

    /// Writes `next` for `subject` only if the stored attempts are still
    /// `seen` (`None`: no item): a compare-and-swap, so that of concurrent
    /// attempts each sees the count and lock the one before it left.
    #[tracing::instrument(skip_all)]
    pub async fn swap_lock_record(
        &self,
        subject: &Subject,
        seen: Option<u32>,
        next: &LockRecord,
    ) -> Result<bool, Unexpected> {
        let swap = LockSwap::count(seen, next);
        let update = self
            .table
            .update(&Key::Lock(subject))
            .update_expression(swap.update)
            .condition_expression(swap.condition)
            .set_expression_attribute_names(Some(swap.names))
            .set_expression_attribute_values(Some(swap.values));
        applied(past_transactions(|| update.clone().send()).await, "counting an attempt against the lock")
    }

    /// Settles a verified login attempt in one transaction, all or nothing:
    /// each lock changed only while its stored attempts are still the ones
    /// read (the compare-and-swap of [`Counters::swap_lock_record`]), with
    /// the session it opens, if any, and its audit records. `Ok(false)`: a
    /// lock moved since it was read (a concurrent attempt); nothing was
    /// written.
    #[tracing::instrument(skip_all)]
    pub async fn settle(
        &self,
        locks: &[LockSettlement<'_>],
        opening: Option<SessionOpening<'_>>,
        audit: Vec<AuditItem>,
    ) -> Result<bool, Unexpected> {
        let table = &self.table;
        let mut transaction = Transaction::default();
        for lock in locks {
            let key = Key::Lock(lock.subject).value();
            transaction = match lock.change {
                LockChange::Count(next) => {
                    let swap = LockSwap::count(lock.seen, &next);
                    let update = Update::builder()
                        .table_name(&table.name)
                        .key("pk", key)
                        .update_expression(swap.update)
                        .condition_expression(swap.condition)
                        .set_expression_attribute_names(Some(swap.names))
                        .set_expression_attribute_values(Some(swap.values))
                        .build()
                        .context("building a lock's update")?;
                    transaction.update(Role::Lock, update)
                }
                LockChange::Keep => {
                    let swap = LockSwap::unchanged(lock.seen);
                    let check = ConditionCheck::builder()
                        .table_name(&table.name)
                        .key("pk", key)
                        .condition_expression(swap.condition)
                        .set_expression_attribute_values((!swap.values.is_empty()).then_some(swap.values))
                        .build()
                        .context("building a lock's check")?;
                    transaction.check(Role::Lock, check)
                }
                LockChange::Clear => {
                    let swap = LockSwap::unchanged(lock.seen);
                    let delete = Delete::builder()
                        .table_name(&table.name)
                        .key("pk", key)
                        .condition_expression(swap.condition)
                        .set_expression_attribute_values((!swap.values.is_empty()).then_some(swap.values))
                        .build()
                        .context("building a lock's delete")?;
                    transaction.delete_where(Role::Lock, delete)
                }
            };
        }
        if let Some(opening) = opening {
            transaction = transaction.put_new(Role::Session, table, session_item(opening.token, opening.session)?)?;
            if let Some((token, device)) = opening.device {
                transaction = transaction.put_new(Role::Device, table, device_item(token, device)?)?;
            }
            if let Some(previous) = opening.previous {
                transaction = transaction.delete(Role::EndedSession, table, &Key::Session(previous), false)?;
            }
        }
        for item in audit {
            transaction = transaction.audit(item)?;
        }
        match transaction.run(table, "settling a login attempt").await? {
            Ok(()) => Ok(true),
            // Its new items have random keys: one there already was written
            // by this transaction, tried again by the SDK after its answer
            // was lost (all of it, then, being a transaction).
            Err(refused) if [Role::Session, Role::Device, Role::Audit].iter().any(|role| refused.failed(*role)) => {
                tracing::info!("a login settled already by a try whose answer was lost");
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// Locks `subject` until `until_ms` (never shortening a longer lock);
    /// the item goes with the lock. A lock stored before instants were
    /// strings is a number of milliseconds, compared as such.
    #[tracing::instrument(skip_all)]
    pub async fn lock(&self, subject: &Subject, until_ms: i64) -> Result<(), Unexpected> {
        let result = self
            .table
            .update(&Key::Lock(subject))
            .condition_expression(
                "attribute_not_exists(locked_until_ms) \
                 OR (attribute_type(locked_until_ms, :text) AND locked_until_ms < :until) \
                 OR (attribute_type(locked_until_ms, :number) AND locked_until_ms < :until_ms)",
            )
            .update_expression("SET locked_until_ms = :until, #ttl = :forget")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":until", instant::value_millis(until_ms))
            .expression_attribute_values(":until_ms", n(until_ms))
            .expression_attribute_values(":text", s("S"))
            .expression_attribute_values(":number", s("N"))
            .expression_attribute_values(":forget", n(until_ms.div_euclid(1000).saturating_add(1)))
            .send()
            .await;
        applied(result, "locking")?;
        Ok(())
    }

    /// Forgets the attempts of `subject` (after a success or a password
    /// reset).
    #[tracing::instrument(skip_all)]
    pub async fn clear_lock(&self, subject: &Subject) -> Result<(), Unexpected> {
        let delete = self.table.client.delete_item().table_name(&self.table.name).key("pk", Key::Lock(subject).value());
        past_transactions(|| delete.clone().send()).await.aws_context("clearing login failures")?;
        Ok(())
    }
}

/// What a verified login attempt does to one of its locks.
#[derive(Debug, Clone, Copy)]
pub enum LockChange {
    /// A failure: the attempt counted, with the lock it earned.
    Count(LockRecord),
    /// A success: the attempts before it forgotten.
    Clear,
    /// Nothing written (a locked lock the attempt does not count under),
    /// only checked unchanged: the transaction has the same items whatever
    /// the locks hold, so its time does not tell.
    Keep,
}

/// One lock of [`Counters::settle`]: `change`, only while the stored
/// attempts are still `seen` (`None`: no item).
#[derive(Debug)]
pub struct LockSettlement<'a> {
    pub subject: &'a Subject,
    pub seen: Option<u32>,
    pub change: LockChange,
}

/// The session a successful login opens: its record, the browser's new
/// device record if it had none, the browser's previous session (ended).
#[derive(Debug)]
pub struct SessionOpening<'a> {
    pub token: &'a TokenHash,
    pub session: &'a SessionRecord,
    pub device: Option<(&'a TokenHash, &'a DeviceRecord)>,
    pub previous: Option<&'a TokenHash>,
}

/// The expressions of a lock's compare-and-swap, for a single update or a
/// transaction's item alike.
struct LockSwap {
    condition: &'static str,
    update: &'static str,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl LockSwap {
    /// The condition that the stored attempts are still `seen`.
    fn unchanged(seen: Option<u32>) -> Self {
        let (condition, values) = match seen {
            None => ("attribute_not_exists(pk)", HashMap::new()),
            Some(seen) => ("failures = :seen", HashMap::from([(":seen".to_owned(), n(i64::from(seen)))])),
        };
        Self { condition, update: "", names: HashMap::new(), values }
    }

    fn count(seen: Option<u32>, next: &LockRecord) -> Self {
        let mut swap = Self::unchanged(seen);
        swap.update = "SET failures = :failures, locked_until_ms = :until, #ttl = :forget";
        swap.names.insert("#ttl".to_owned(), TTL_ATTRIBUTE.to_owned());
        swap.values.insert(":failures".to_owned(), n(i64::from(next.failures)));
        swap.values.insert(":until".to_owned(), instant::value_millis(next.locked_until_ms));
        swap.values.insert(":forget".to_owned(), n(next.expires_at));
        swap
    }
}
