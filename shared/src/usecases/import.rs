//! Import of a billing export uploaded to S3: the file is streamed to disk,
//! read twice row by row (first to find the header and accounts listed twice
//! with different data, then to load), and written to DynamoDB in batches of
//! 25 with several batches in flight. Residents whose account changed payer
//! are suspended until identified again. A JSON summary and a CSV of rejected
//! rows land under `reports/`, and the source object is tagged as processed.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;

use crate::billing::source::ReadLimits;
use crate::billing::spool::{Spool, SpoolWriter};
use crate::billing::{self, AccountRef, FileProblem, RowOutcome, RowOutcomeRef, RowProblem, Table};
use crate::clock;
use crate::domain::{BillingAccount, ResidentStatus};
use crate::errors::{Context, Unexpected};
use crate::letters;
use crate::queue::IdentificationJob;
use crate::services::Services;
use crate::usecases::cabinet::{self, Held};

/// Rows written per DynamoDB BatchWriteItem (its limit).
pub const BATCH_SIZE: usize = 25;
/// Batches in flight at once.
pub const WRITERS: usize = 8;

pub const INCOMING_PREFIX: &str = "incoming/";
pub const REPORTS_PREFIX: &str = "reports/";

/// The JSON summary of one import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub file: String,
    /// `loaded`, `file_rejected` when nothing could be loaded, or
    /// `import_failed` when the import itself failed (see [`failure_report`]).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<ProblemReport>,
    pub rows_read: u64,
    pub loaded: u64,
    pub unchanged: u64,
    pub rejected: u64,
    /// Rows that are not accounts: blank, totals, group headings, a repeated header.
    pub skipped: u64,
    /// Rows identical to an earlier row of the same account: loaded once.
    pub repeated: u64,
    /// Accounts loaded with an address or balance left out (see the warnings report).
    pub warnings: u64,
    pub residents_suspended: u64,
    pub columns_recognized: Vec<String>,
    pub columns_ignored: Vec<String>,
    pub duration_ms: u128,
    pub rejected_rows_report: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings_report: Option<String>,
    /// For `import_failed`: how many times Lambda ran the import.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// For `import_failed`: the error Lambda recorded, for support.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProblemReport {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_lines: Option<Vec<String>>,
}

impl ProblemReport {
    fn of(problem: &FileProblem) -> Self {
        Self {
            code: problem.code(),
            message: problem.message(),
            first_lines: problem.first_lines().map(<[String]>::to_vec),
        }
    }
}

/// What became of an S3 event for one object.
#[derive(Debug)]
pub enum Imported {
    Done(Box<ImportReport>),
    /// The same object (same ETag) was processed before: nothing is redone.
    AlreadyProcessed,
    /// Not under `incoming/`: not a billing upload.
    Ignored,
}

/// Where the reports of one upload go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportKeys {
    pub summary: String,
    pub rejected: String,
    pub warnings: String,
}

/// Where reports of `key` go: `incoming/2026/ls.csv` → `reports/2026/ls.csv.json`.
pub fn report_keys(key: &str) -> ReportKeys {
    let name = key.strip_prefix(INCOMING_PREFIX).unwrap_or(key);
    ReportKeys {
        summary: format!("{REPORTS_PREFIX}{name}.json"),
        rejected: format!("{REPORTS_PREFIX}{name}.rejected.csv"),
        warnings: format!("{REPORTS_PREFIX}{name}.warnings.csv"),
    }
}

#[tracing::instrument(skip_all, fields(key))]
pub async fn import_object(services: &Services, bucket: &str, key: &str) -> Result<Imported, Unexpected> {
    if !key.starts_with(INCOMING_PREFIX) {
        return Ok(Imported::Ignored);
    }
    tracing::Span::current().record("key", key);
    let started = Instant::now();
    let limits = ReadLimits::from_env();
    let temp = TempDir::new()?;
    let source = temp.path.join("source");
    let downloaded = services.files.download(bucket, key, &source, limits.max_file_bytes).await?;
    let tags = services.files.tags(bucket, key).await?;
    if tags.get("import-status").map(String::as_str) == Some("processed")
        && tags.get("import-etag") == Some(&downloaded.etag)
    {
        tracing::info!("already processed; nothing to do");
        return Ok(Imported::AlreadyProcessed);
    }

    let mut report = ImportReport { file: key.to_owned(), status: "loaded", ..ImportReport::default() };
    let problems = ProblemFiles { rejected: temp.path.join("rejected.csv"), warnings: temp.path.join("warnings.csv") };
    let outcome = if downloaded.saved {
        load(services, &source, &limits, &problems, &mut report).await?
    } else {
        Err(FileProblem::TooLarge { bytes: downloaded.bytes, limit: limits.max_file_bytes })
    };
    if let Err(problem) = outcome {
        report.status = "file_rejected";
        report.problem = Some(ProblemReport::of(&problem));
    }
    let keys = report_keys(key);
    if report.rejected > 0 {
        services.files.upload_file(bucket, &keys.rejected, &problems.rejected, "text/csv; charset=utf-8").await?;
        report.rejected_rows_report = Some(keys.rejected);
    }
    if report.warnings > 0 {
        services.files.upload_file(bucket, &keys.warnings, &problems.warnings, "text/csv; charset=utf-8").await?;
        report.warnings_report = Some(keys.warnings);
    }
    report.duration_ms = started.elapsed().as_millis();
    let json = serde_json::to_vec_pretty(&report).context("encoding the import report")?;
    services.files.put(bucket, &keys.summary, json, "application/json").await?;
    services
        .files
        .set_tags(
            bucket,
            key,
            &[("import-status", "processed"), ("import-etag", &downloaded.etag), ("import-report", &keys.summary)],
        )
        .await?;
    tracing::info!(
        metric = crate::metrics::IMPORT_ROWS,
        rows_read = report.rows_read,
        loaded = report.loaded,
        unchanged = report.unchanged,
        rejected = report.rejected,
        skipped = report.skipped,
        warnings = report.warnings,
        status = report.status,
        "billing file imported"
    );
    Ok(Imported::Done(Box::new(report)))
}

/// Lambda's record of an import that failed for good (after its retries,
/// or when it timed out or ran out of memory), as the on-failure
/// destination of the S3-triggered invocation delivers it.
#[derive(Debug, Clone, serde::Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedInvocation {
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub request_context: FailureContext,
    pub request_payload: aws_lambda_events::event::s3::S3Event,
    #[serde(default)]
    pub response_payload: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureContext {
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub approximate_invoke_count: Option<u32>,
}

impl FailedInvocation {
    /// The error as Lambda recorded it: type and message.
    fn error(&self) -> (String, String) {
        let field = |name: &str| {
            self.response_payload.as_ref().and_then(|p| p.get(name)).and_then(|v| v.as_str()).unwrap_or_default()
        };
        (field("errorType").to_owned(), field("errorMessage").to_owned())
    }

    /// What the billing team is told, in Russian, by the kind of failure.
    pub fn message(&self) -> String {
        let (kind, message) = self.error();
        let retry = "Строки, которые успели загрузиться, остались; повторная загрузка того же файла их не задвоит.";
        if message.contains("timed out") || kind.contains("Timeout") {
            format!(
                "Загрузка не уложилась в отведённые 15 минут. Разделите файл на несколько частей и загрузите их по очереди. {retry}"
            )
        } else if kind.contains("ExitError") || message.contains("signal: killed") || message.contains("memory") {
            format!(
                "Функции загрузки не хватило памяти. Сохраните выгрузку в CSV или разделите её на несколько файлов и загрузите снова. {retry}"
            )
        } else {
            format!(
                "Загрузка прервалась из-за сбоя. Загрузите файл ещё раз; если сбой повторится, передайте этот отчёт в поддержку. {retry}"
            )
        }
    }
}

/// Writes `reports/<file>.json` with `status: import_failed` for each file
/// of a failed invocation, unless that file was imported after all (its
/// current version is tagged as processed). Returns how many were written.
pub async fn report_failure(services: &Services, failed: &FailedInvocation) -> Result<usize, Unexpected> {
    let mut written = 0;
    for record in &failed.request_payload.records {
        let (Some(bucket), Some(key)) = (record.s3.bucket.name.as_deref(), record.s3.object.key.as_deref()) else {
            continue;
        };
        let key = crate::files::object_key(key)?;
        if !key.starts_with(INCOMING_PREFIX) {
            continue;
        }
        let tags = services.files.tags(bucket, &key).await.unwrap_or_default();
        if tags.get("import-status").map(String::as_str) == Some("processed") {
            tracing::info!(key, "the failed import was completed by a later attempt; no failure report");
            continue;
        }
        let (kind, message) = failed.error();
        let detail: String = format!("{kind}: {message}").chars().take(500).collect();
        let report = ImportReport {
            file: key.clone(),
            status: "import_failed",
            problem: Some(ProblemReport { code: "import_failed", message: failed.message(), first_lines: None }),
            attempts: failed.request_context.approximate_invoke_count,
            error: Some(detail),
            ..ImportReport::default()
        };
        let json = serde_json::to_vec_pretty(&report).context("encoding the failure report")?;
        services.files.put(bucket, &report_keys(&key).summary, json, "application/json").await?;
        tracing::warn!(key, error_type = %kind, "billing import failed; failure report written");
        written += 1;
    }
    Ok(written)
}

/// A folder for one import's files, removed afterwards.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new() -> Result<Self, Unexpected> {
        let path = std::env::temp_dir().join(format!("import-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).context("creating a temporary folder")?;
        Ok(Self { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Where the rows that are not loaded, or loaded in part, are written.
struct ProblemFiles {
    rejected: PathBuf,
    warnings: PathBuf,
}

/// Per distinct account: the line it first appears on and whether it
/// appears again with different data. Kept as a sorted vector of 16-byte
/// entries, so 1,000,000 accounts take 16 MB whatever the rows hold.
#[derive(Default)]
pub struct AccountIndex {
    entries: Vec<IndexEntry>,
    /// Where the entry after the last one found is: files mostly list
    /// their accounts in order, so the next row's account is tried there
    /// before searching.
    next: std::cell::Cell<usize>,
}

#[derive(Clone, Copy)]
struct IndexEntry {
    key: u64,
    fingerprint: u32,
    /// First line of the account; [`CONFLICTING`] once it repeats differently.
    line: u32,
}

const CONFLICTING: u32 = u32::MAX;

/// The account digits as a number; the rare 20-digit account is hashed.
fn account_key(account: &str) -> u64 {
    account.parse().unwrap_or_else(|_| {
        let mut hasher = DefaultHasher::new();
        account.hash(&mut hasher);
        hasher.finish()
    })
}

impl AccountIndex {
    fn record(&mut self, account: &AccountRef<'_>, line: u64) {
        let line = u32::try_from(line).unwrap_or(CONFLICTING - 1);
        self.entries.push(IndexEntry {
            key: account_key(account.account.as_str()),
            fingerprint: fingerprint(account),
            line,
        });
    }

    /// Sorts, and keeps one entry per account, marked when its rows differ.
    fn seal(&mut self) {
        self.entries.sort_unstable_by_key(|e| (e.key, e.line));
        let mut sealed: Vec<IndexEntry> = Vec::with_capacity(self.entries.len());
        for entry in self.entries.drain(..) {
            match sealed.last_mut() {
                Some(last) if last.key == entry.key => {
                    if last.fingerprint != entry.fingerprint {
                        last.line = CONFLICTING;
                    }
                }
                _ => sealed.push(entry),
            }
        }
        sealed.shrink_to_fit();
        self.entries = sealed;
    }

    fn find(&self, account: &BillingAccount) -> Option<&IndexEntry> {
        self.find_key(account_key(account.account.as_str()))
    }

    fn find_key(&self, key: u64) -> Option<&IndexEntry> {
        let next = self.next.get();
        // Keys are unique once sealed: an entry with the key is the one
        // the search would find.
        let index = match self.entries.get(next) {
            Some(entry) if entry.key == key => next,
            _ => self.entries.binary_search_by_key(&key, |e| e.key).ok()?,
        };
        self.next.set(index + 1);
        self.entries.get(index)
    }

    /// How a valid row of pass two is treated.
    fn verdict(&self, account: &BillingAccount, line: u64) -> Verdict {
        match self.find(account) {
            Some(entry) if entry.line == CONFLICTING => Verdict::Conflicting,
            Some(entry) if u64::from(entry.line) != line => Verdict::Repeat,
            _ => Verdict::Load,
        }
    }

    /// Whether the account is listed more than once with different data.
    pub fn is_conflicting(&self, account: &BillingAccount) -> bool {
        self.find(account).is_some_and(|e| e.line == CONFLICTING)
    }
}

enum Verdict {
    Load,
    Repeat,
    Conflicting,
}

/// The row's data (payer, address, balance) hashed to 32 bits: two
/// different rows of one account look alike with a chance of one in four
/// billion.
fn fingerprint(account: &AccountRef<'_>) -> u32 {
    let mut hasher = RowHasher::default();
    hasher.write(account.full_name.as_str().as_bytes());
    match &account.address {
        Some(address) => {
            hasher.write_u64(1);
            hasher.write(address.as_bytes());
        }
        None => hasher.write_u64(0),
    }
    match account.balance {
        Some(balance) => {
            hasher.write_u64(1);
            hasher.write_u64(balance.0 as u64);
        }
        None => hasher.write_u64(0),
    }
    let hash = hasher.finish();
    (hash ^ (hash >> 32)) as u32
}

/// A fast hash for [`fingerprint`] (SipHash took a tenth of the first
/// pass): 8 bytes at a time through a folded 64×64→128-bit multiply, as
/// foldhash and ahash do. Rows are not chosen by an attacker against this
/// hash, and a collision only keeps a conflicting duplicate from being
/// noticed, so no key is needed.
struct RowHasher {
    state: u64,
}

impl Default for RowHasher {
    fn default() -> Self {
        Self { state: 0x243F_6A88_85A3_08D3 }
    }
}

impl RowHasher {
    const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

    fn mix(&mut self, word: u64) {
        let product = u128::from(self.state ^ word) * u128::from(Self::MULTIPLIER);
        self.state = (product as u64) ^ ((product >> 64) as u64);
    }

    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    /// The bytes, then their length, so that where one text ends and the
    /// next begins is part of the hash.
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buffer = [0u8; 8];
            buffer.copy_from_slice(word);
            self.mix(u64::from_le_bytes(buffer));
        }
        let mut last = [0u8; 8];
        for (slot, byte) in last.iter_mut().zip(words.remainder()) {
            *slot = *byte;
        }
        self.mix(u64::from_le_bytes(last));
        self.mix(bytes.len() as u64);
    }

    fn finish(&self) -> u64 {
        let product = u128::from(self.state) * u128::from(Self::MULTIPLIER ^ 0xA076_1D64_78BD_642F);
        (product as u64) ^ ((product >> 64) as u64)
    }
}

/// The first pass: the file's format and header, and the accounts indexed
/// (see [`AccountIndex`]).
pub fn survey(path: &Path, limits: &ReadLimits) -> Result<(Table, AccountIndex), FileProblem> {
    survey_then(path, limits, |_, _| {})
}

/// [`survey`], handing each data row's outcome to `also` as well.
fn survey_then(
    path: &Path,
    limits: &ReadLimits,
    mut also: impl FnMut(u64, &RowOutcomeRef<'_>),
) -> Result<(Table, AccountIndex), FileProblem> {
    let table = billing::open(path, limits)?;
    let mut accounts = AccountIndex::default();
    // Only the key and the fingerprint are needed: nothing is copied.
    billing::visit_outcomes(path, &table, |line, outcome| {
        if let RowOutcomeRef::Account { account, .. } = &outcome {
            accounts.record(account, line);
        }
        also(line, &outcome);
        ControlFlow::Continue(())
    })?;
    accounts.seal();
    Ok((table, accounts))
}

/// [`survey`], keeping every data row's outcome in a spool at `spool`, so
/// that the second pass reads the outcomes back instead of parsing the
/// file again. If the spool cannot be written (a full disk: a huge XLSX can
/// unpack to more than the function's storage), it is dropped (a writer
/// left unfinished removes its file) and the second pass parses the file
/// again; the import never fails for it.
pub fn survey_spooled(
    path: &Path,
    limits: &ReadLimits,
    spool: &Path,
) -> Result<(Table, AccountIndex, Option<Spool>), FileProblem> {
    let budget = spool_budget(std::fs::metadata(path).map_or(0, |m| m.len()));
    let mut writer = SpoolWriter::create(spool, budget).map_err(|error| spool_dropped(&error)).ok();
    let (table, accounts) = survey_then(path, limits, |line, outcome| {
        if let Some(Err(error)) = writer.as_mut().map(|writer| writer.push(line, outcome)) {
            spool_dropped(&error);
            writer = None;
        }
    })?;
    let spool = writer.and_then(|writer| writer.finish().map_err(|error| spool_dropped(&error)).ok());
    Ok((table, accounts, spool))
}

/// The most disk a spool may take beside a source of `source_bytes`: about
/// 1.6 times a CSV file usually, so twice the file leaves the rest of the
/// function's 4 GiB for the reports even with a 500 MB file; a file of
/// short junk rows, whose outcomes are far larger, is parsed twice instead.
fn spool_budget(source_bytes: u64) -> u64 {
    source_bytes.saturating_mul(2).saturating_add(64 * 1024 * 1024)
}

fn spool_dropped(error: &std::io::Error) {
    tracing::warn!(%error, "the checked rows could not be kept; the second pass parses the file again");
}

/// What the reading thread hands to the writers.
enum Parsed {
    Row(BillingAccount, Vec<RowProblem>),
    /// A row identical to one before it.
    Repeat,
    Skipped,
    Rejected(RowProblem),
}

async fn load(
    services: &Services,
    source: &Path,
    limits: &ReadLimits,
    problems: &ProblemFiles,
    report: &mut ImportReport,
) -> Result<Result<(), FileProblem>, Unexpected> {
    let path = source.to_owned();
    let spool = source.with_file_name("outcomes.spool");
    let limits = *limits;
    let surveyed = tokio::task::spawn_blocking(move || survey_spooled(&path, &limits, &spool))
        .await
        .context("surveying a billing file")?;
    let (table, accounts, spool) = match surveyed {
        Ok(surveyed) => surveyed,
        Err(problem) => return Ok(Err(problem)),
    };
    report.format = Some(table.format.describe());
    report.columns_recognized = table.header.columns.recognized.clone();
    report.columns_ignored = table.header.columns.ignored.clone();

    let (sender, receiver) = tokio::sync::mpsc::channel::<Parsed>(BATCH_SIZE * WRITERS * 4);
    let loaded_at = clock::now();
    let path = source.to_owned();
    let reader = tokio::task::spawn_blocking(move || {
        let mut pass = |line, outcome| {
            let parsed = match outcome {
                RowOutcome::Account { account, warnings } => match accounts.verdict(&account, line) {
                    Verdict::Load => Parsed::Row(account, warnings),
                    // The same row again: loaded once.
                    Verdict::Repeat => Parsed::Repeat,
                    Verdict::Conflicting => Parsed::Rejected(RowProblem {
                        line,
                        column: Some(billing::Column::Account),
                        reason: "Лицевой счёт встречается в файле несколько раз с разными данными; ни одна из этих строк не загружена.".into(),
                        value: account.account.to_string(),
                    }),
                },
                RowOutcome::Skipped => Parsed::Skipped,
                RowOutcome::Rejected(rejected) => Parsed::Rejected(rejected),
            };
            if sender.blocking_send(parsed).is_err() {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        };
        // The second pass reads back what the first one checked, or, with
        // no spool, parses the file again.
        match spool {
            Some(spool) => {
                spool.visit(loaded_at, &mut pass).map(Ok).context("reading back the checked rows of a billing file")
            }
            None => {
                Ok(billing::visit_outcomes(&path, &table, |line, outcome| pass(line, outcome.into_owned(loaded_at))))
            }
        }
    });

    let mut rejected_csv = ProblemCsv::create(&problems.rejected)?;
    let mut warnings_csv = ProblemCsv::create(&problems.warnings)?;
    let mut rows = tokio_stream(receiver);
    let mut batches = futures::stream::poll_fn(move |cx| {
        // Gather up to BATCH_SIZE rows, in file order.
        let mut batch = Vec::new();
        loop {
            match rows.poll_next_unpin(cx) {
                std::task::Poll::Ready(Some(parsed)) => {
                    batch.push(parsed);
                    if batch.len() >= BATCH_SIZE {
                        return std::task::Poll::Ready(Some(batch));
                    }
                }
                std::task::Poll::Ready(None) => {
                    return std::task::Poll::Ready(if batch.is_empty() { None } else { Some(batch) });
                }
                std::task::Poll::Pending if !batch.is_empty() => return std::task::Poll::Ready(Some(batch)),
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        }
    })
    .map(|batch: Vec<Parsed>| async move {
        let mut sorted = SortedBatch::default();
        for parsed in batch {
            match parsed {
                Parsed::Row(account, warnings) => {
                    sorted.accounts.push(account);
                    sorted.warnings.extend(warnings);
                }
                Parsed::Repeat => sorted.repeats += 1,
                Parsed::Skipped => sorted.skipped += 1,
                Parsed::Rejected(row) => sorted.rejected.push(row),
            }
        }
        let written = write_batch(services, &sorted.accounts).await;
        (sorted, written)
    })
    // `buffered` keeps batches in file order, so the reports are too.
    .buffered(WRITERS);

    let mut failure = None;
    while let Some((sorted, written)) = batches.next().await {
        report.rows_read +=
            sorted.accounts.len() as u64 + sorted.repeats + sorted.skipped + sorted.rejected.len() as u64;
        report.rejected += sorted.rejected.len() as u64;
        report.skipped += sorted.skipped;
        report.repeated += sorted.repeats;
        report.warnings += sorted.warnings.len() as u64;
        for row in &sorted.rejected {
            rejected_csv.write(row)?;
        }
        for row in &sorted.warnings {
            warnings_csv.write(row)?;
        }
        match written {
            Ok(outcome) => {
                report.loaded += outcome.changed;
                report.unchanged += outcome.unchanged;
                report.residents_suspended += outcome.suspended;
            }
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    drop(batches);
    let read = reader.await.context("reading a billing file")?;
    if let Some(error) = failure {
        return Err(error);
    }
    let read = read?;
    rejected_csv.finish()?;
    warnings_csv.finish()?;
    Ok(read)
}

/// One batch of rows, sorted by what becomes of them.
#[derive(Default)]
struct SortedBatch {
    accounts: Vec<BillingAccount>,
    warnings: Vec<RowProblem>,
    rejected: Vec<RowProblem>,
    repeats: u64,
    skipped: u64,
}

fn tokio_stream<T>(mut receiver: tokio::sync::mpsc::Receiver<T>) -> impl futures::Stream<Item = T> + Unpin {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

#[derive(Debug, Default)]
struct BatchOutcome {
    changed: u64,
    unchanged: u64,
    suspended: u64,
}

fn same_data(a: &BillingAccount, b: &BillingAccount) -> bool {
    a.full_name.as_str() == b.full_name.as_str() && a.address == b.address && a.balance == b.balance
}

/// Reads what is stored for these accounts, suspends residents whose payer
/// changed, then writes only what changed.
async fn write_batch(services: &Services, accounts: &[BillingAccount]) -> Result<BatchOutcome, Unexpected> {
    let mut outcome = BatchOutcome::default();
    if accounts.is_empty() {
        return Ok(outcome);
    }
    let numbers: Vec<_> = accounts.iter().map(|a| a.account.clone()).collect();
    let stored = services.store.billing.get_many(&numbers).await?;
    let mut changed = Vec::new();
    for account in accounts {
        match stored.get(account.account.as_str()) {
            Some(old) if same_data(old, account) => outcome.unchanged += 1,
            Some(old) => {
                if !old.full_name.matches(&account.full_name) && suspend(services, account).await? {
                    outcome.suspended += 1;
                }
                changed.push(account.clone());
            }
            None => changed.push(account.clone()),
        }
    }
    // Suspension comes first: if the write then fails, the retried import
    // sees the payer change again and the suspension is not repeated.
    services.store.billing.put_many(&changed).await?;
    outcome.changed = changed.len() as u64;
    Ok(outcome)
}

/// Suspends the active account whose payer changed, in whichever cabinet
/// holds it (only that account: the cabinet keeps the others), if its name
/// no longer matches; re-queues its identification and tells the resident
/// by e-mail.
async fn suspend(services: &Services, account: &BillingAccount) -> Result<bool, Unexpected> {
    let Some(Held { person, account: held }) = cabinet::holder(services, &account.account).await? else {
        return Ok(false);
    };
    // Only an active account is suspended: one still awaiting
    // identification is decided against the data as it is now anyway, and
    // "suspended" would tell of access it never had.
    if held.status != ResidentStatus::Active || held.full_name.matches(&account.full_name) {
        return Ok(false);
    }
    let now = clock::now();
    let ready_at = clock::ceil_to_second(now + services.config.identify_delay);
    if !services.store.residents.suspend(held.stage_item(), account.full_name.as_str(), ready_at).await? {
        return Ok(false);
    }
    let base_url = cabinet::base_url(services, &person);
    let job = IdentificationJob { account: account.account.clone(), not_before: ready_at, base_url };
    services.queue.schedule(&job, now).await?;
    let others = !person.linked_accounts.is_empty();
    let letter = letters::suspended(&person.email, &held.account, &clock::moscow(ready_at), others)?;
    if let Err(error) = services.mailer.send(&letter).await {
        // The suspension stands and identification follows; the outcome
        // letter still reaches the resident.
        tracing::error!(error = %error, "the suspension letter could not be sent");
    }
    tracing::info!(account = %account.account, "resident suspended: the payer changed");
    Ok(true)
}

/// Rows for the billing team, as CSV that Excel opens correctly: UTF-8
/// with BOM, `;`, and no cell that Excel would run as a formula.
struct ProblemCsv {
    writer: csv::Writer<std::fs::File>,
}

impl ProblemCsv {
    fn create(path: &Path) -> Result<Self, Unexpected> {
        use std::io::Write;
        let mut file = std::fs::File::create(path).context("creating an import report")?;
        file.write_all(&[0xEF, 0xBB, 0xBF]).context("writing an import report")?;
        let mut writer = csv::WriterBuilder::new().delimiter(b';').from_writer(file);
        writer.write_record(["Строка", "Столбец", "Причина", "Значение"]).context("writing an import report")?;
        Ok(Self { writer })
    }

    fn write(&mut self, row: &RowProblem) -> Result<(), Unexpected> {
        let line = row.line.to_string();
        let column = row.column.map_or("", billing::Column::label);
        self.writer
            .write_record([line.as_str(), column, row.reason.as_str(), &defuse_formula(&row.value)])
            .context("writing an import report")
    }

    fn finish(mut self) -> Result<(), Unexpected> {
        self.writer.flush().context("writing an import report")
    }
}

/// A value Excel would take for a formula (`=`, `+`, `-`, `@`, tab, CR at
/// the start) gets a leading apostrophe, as OWASP advises against CSV
/// injection: the billing team opens these reports in Excel.
pub fn defuse_formula(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    use proptest::prelude::*;

    #[test]
    fn without_room_for_the_spool_the_survey_still_succeeds_and_indexes_every_account() {
        let path = std::env::temp_dir().join(format!("spool-less-{}", uuid::Uuid::new_v4()));
        let text = "ЛС;ФИО;Адрес\n100200300;Белова Надежда Ивановна;ул. Ленина, 1\n\
                    100200300;Иванов Пётр Петрович;ул. Ленина, 2\n100200301;Белов Иван Иванович;\n";
        std::fs::write(&path, text).unwrap();
        // A folder that does not exist stands for a disk with no room left.
        let nowhere = std::env::temp_dir().join(format!("missing-{}", uuid::Uuid::new_v4())).join("outcomes.spool");
        let (_, accounts, spool) = survey_spooled(&path, &ReadLimits::default(), &nowhere).unwrap();
        assert!(spool.is_none());
        let (_, surveyed) = survey(&path, &ReadLimits::default()).unwrap();
        let mut seen = Vec::new();
        billing::visit_outcomes(&path, &billing::open(&path, &ReadLimits::default()).unwrap(), |_, outcome| {
            if let RowOutcome::Account { account, .. } = outcome.into_owned(OffsetDateTime::UNIX_EPOCH) {
                seen.push((accounts.is_conflicting(&account), surveyed.is_conflicting(&account)));
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(seen, [(true, true), (true, true), (false, false)]);
        std::fs::remove_file(&path).unwrap();
    }

    fn survey_bytes(bytes: &[u8]) {
        let path = std::env::temp_dir().join(format!("fuzz-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, bytes).unwrap();
        // Any outcome but a panic is fine.
        let _ = survey(&path, &ReadLimits::default());
        std::fs::remove_file(&path).unwrap();
    }

    proptest! {
        #[test]
        fn the_index_finds_accounts_in_any_order_as_a_search_does(
            keys in proptest::collection::vec(0u64..64, 0..40),
            lookups in proptest::collection::vec(0u64..70, 0..80),
        ) {
            let mut entries: Vec<IndexEntry> =
                keys.iter().map(|&key| IndexEntry { key, fingerprint: 0, line: key as u32 }).collect();
            entries.sort_unstable_by_key(|e| e.key);
            entries.dedup_by_key(|e| e.key);
            let index = AccountIndex { entries: entries.clone(), next: Default::default() };
            // In file order (each after the last found), then at random.
            let in_order = entries.iter().map(|e| e.key).collect::<Vec<_>>();
            for key in in_order.into_iter().chain(lookups) {
                let searched = entries.binary_search_by_key(&key, |e| e.key).ok().and_then(|i| entries.get(i));
                prop_assert_eq!(index.find_key(key).map(|e| (e.key, e.line)), searched.map(|e| (e.key, e.line)));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn no_bytes_make_the_reader_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            survey_bytes(&bytes);
        }

        #[test]
        fn no_bytes_after_a_zip_signature_make_the_reader_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            survey_bytes(&[b"PK\x03\x04".as_slice(), &bytes].concat());
        }

        #[test]
        fn no_csv_like_text_makes_the_reader_panic(
            text in "(ЛС|ФИО|Сальдо|Адрес|[0-9 ,.;\t\"\r\nА-Яа-яA-z-]{0,12}){0,60}"
        ) {
            survey_bytes(text.as_bytes());
            survey_bytes(&encoding_rs::WINDOWS_1251.encode(&text).0);
        }
    }

    /// One generated account row: cells as written, and what must be read.
    #[derive(Debug, Clone)]
    struct Written {
        account: u64,
        name: String,
        address: String,
        kopecks: i64,
        balance_text: String,
    }

    fn written_row() -> impl Strategy<Value = Written> {
        let surname = "(Иванов|Петрова|Римский-Корсаков|Ёлкина|О'Нил|Зайцев)";
        let given = "(Иван|Анна|Пётр|Мария|Жан-Поль)";
        let patronymic = "(Иванович|Сергеевна|Петрович|)";
        (
            (surname, given, patronymic),
            // Addresses full of the other delimiters, quotes and commas.
            "[а-яА-ЯёЁ0-9 .,;|\t\"-]{0,30}",
            -10_000_000i64..10_000_000,
            0..4usize,
        )
            .prop_map(|((s, g, p), address, kopecks, notation)| {
                let rubles = kopecks.unsigned_abs() / 100;
                let cents = kopecks.unsigned_abs() % 100;
                let sign = if kopecks < 0 { "-" } else { "" };
                let grouped = rubles
                    .to_string()
                    .as_bytes()
                    .rchunks(3)
                    .rev()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ");
                let balance_text = match notation {
                    0 => format!("{sign}{grouped},{cents:02}"),
                    1 => format!("{sign}{rubles}.{cents:02}"),
                    2 => format!("{sign}{grouped},{cents:02} руб."),
                    _ if kopecks < 0 => format!("({grouped},{cents:02})"),
                    _ => format!("{rubles},{cents:02}"),
                };
                Written { account: 0, name: format!("{s} {g} {p}"), address, kopecks, balance_text }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever the delimiter, encoding and line ending, and whatever
        /// the cells hold of the other delimiters, quotes and commas, the
        /// import reads back exactly the rows that were written.
        #[test]
        fn the_reader_reads_back_exactly_what_was_written(
            mut rows in proptest::collection::vec(written_row(), 1..12),
            delimiter in proptest::sample::select(vec![b';', b'\t', b',', b'|']),
            encoding in 0..4usize,
            crlf in any::<bool>(),
            title in any::<bool>(),
            order in Just([0usize, 1, 2, 3]).prop_shuffle(),
        ) {
            for (i, row) in rows.iter_mut().enumerate() {
                row.account = 4_000_000 + i as u64;
            }
            let headers = ["Лицевой счёт", "ФИО", "Адрес", "Сальдо"];
            let mut writer = csv::WriterBuilder::new().flexible(true).delimiter(delimiter).from_writer(Vec::new());
            if title {
                writer.write_record(["Выгрузка от 01.11.2026, ООО «Потенциал»; лицевые счета"]).unwrap();
            }
            writer.write_record(order.iter().map(|&i| headers[i])).unwrap();
            for row in &rows {
                let cells = [row.account.to_string(), row.name.clone(), row.address.clone(), row.balance_text.clone()];
                writer.write_record(order.iter().map(|&i| cells[i].as_str())).unwrap();
            }
            let mut text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
            if crlf {
                text = text.replace('\n', "\r\n");
            }
            let bytes = match encoding {
                0 => text.into_bytes(),
                1 => [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat(),
                2 => encoding_rs::WINDOWS_1251.encode(&text).0.into_owned(),
                _ => [vec![0xFF, 0xFE], text.encode_utf16().flat_map(u16::to_le_bytes).collect()].concat(),
            };
            let path = std::env::temp_dir().join(format!("roundtrip-{}", uuid::Uuid::new_v4()));
            std::fs::write(&path, &bytes).unwrap();
            let (table, _) = survey(&path, &ReadLimits::default()).map_err(|p| TestCaseError::fail(format!("{p:?}")))?;
            let mut read = Vec::new();
            billing::visit_rows(&path, &table.format, |row| {
                if row.line > table.header.line {
                    read.push(billing::classify(&row, &table.header.columns, OffsetDateTime::UNIX_EPOCH));
                }
                ControlFlow::Continue(())
            })
            .unwrap();
            std::fs::remove_file(&path).unwrap();
            prop_assert_eq!(read.len(), rows.len());
            for (outcome, row) in read.iter().zip(&rows) {
                let RowOutcome::Account { account, warnings } = outcome else {
                    return Err(TestCaseError::fail(format!("{row:?} read as {outcome:?}")));
                };
                prop_assert!(warnings.is_empty(), "{:?}", warnings);
                prop_assert_eq!(account.account.as_str(), row.account.to_string());
                let name = crate::domain::FullName::parse(&row.name).unwrap();
                prop_assert_eq!(account.full_name.as_str(), name.as_str());
                let address = crate::text::fold(&row.address);
                prop_assert_eq!(account.address.as_deref(), (!address.is_empty()).then_some(address.as_str()));
                prop_assert_eq!(account.balance, Some(crate::domain::Money(row.kopecks)));
            }
        }
    }

    #[test]
    fn reports_are_named_after_the_file() {
        let keys = report_keys("incoming/2026-11/ls.csv");
        assert_eq!(keys.summary, "reports/2026-11/ls.csv.json");
        assert_eq!(keys.rejected, "reports/2026-11/ls.csv.rejected.csv");
        assert_eq!(keys.warnings, "reports/2026-11/ls.csv.warnings.csv");
    }

    fn failed(response: serde_json::Value) -> FailedInvocation {
        serde_json::from_value(serde_json::json!({
            "version": "1.0",
            "timestamp": "2026-11-25T10:00:00.000Z",
            "requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:eu-central-1:1:function:import:$LATEST",
                               "condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": {"Records": []},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": response
        }))
        .unwrap()
    }

    #[test]
    fn failure_reports_say_what_happened() {
        let timeout = failed(
            serde_json::json!({"errorMessage": "2026-11-25T10:15:00.000Z r Task timed out after 900.00 seconds"}),
        );
        assert!(timeout.message().contains("15 минут"), "{}", timeout.message());
        let memory = failed(serde_json::json!({"errorType": "Runtime.ExitError",
            "errorMessage": "RequestId: r Error: Runtime exited with error: signal: killed"}));
        assert!(memory.message().contains("памяти"), "{}", memory.message());
        let error =
            failed(serde_json::json!({"errorType": "Unexpected", "errorMessage": "reading a billing file from S3"}));
        assert!(error.message().contains("сбоя"), "{}", error.message());
        assert_eq!(error.request_context.approximate_invoke_count, Some(3));
    }

    #[test]
    fn formulas_are_defused_in_reports() {
        for value in ["=1+1", "+7 916", "-150", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(defuse_formula(value), format!("'{value}"), "{value:?}");
        }
        assert_eq!(defuse_formula("Иванов"), "Иванов");
    }
}
