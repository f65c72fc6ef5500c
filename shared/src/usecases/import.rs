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
use time::OffsetDateTime;

use crate::billing::{self, ColumnMap, FileProblem, Format, RawRow, RejectedRow};
use crate::clock;
use crate::domain::{BillingAccount, ResidentStatus};
use crate::errors::{Context, Unexpected};
use crate::letters;
use crate::queue::IdentificationJob;
use crate::services::Services;

/// Rows written per DynamoDB BatchWriteItem (its limit).
pub const BATCH_SIZE: usize = 25;
/// Batches in flight at once.
pub const WRITERS: usize = 8;
/// Rows searched for the header (1C exports may start with a title).
const HEADER_SEARCH_ROWS: usize = 20;

pub const INCOMING_PREFIX: &str = "incoming/";
pub const REPORTS_PREFIX: &str = "reports/";

/// The JSON summary of one import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub file: String,
    /// `loaded`, or `file_rejected` when nothing could be loaded.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<ProblemReport>,
    pub rows_read: u64,
    pub loaded: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub residents_suspended: u64,
    pub columns_recognized: Vec<String>,
    pub columns_ignored: Vec<String>,
    pub duration_ms: u128,
    pub rejected_rows_report: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProblemReport {
    pub code: &'static str,
    pub message: String,
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

/// Where reports of `key` go: `incoming/2026/ls.csv` → `reports/2026/ls.csv.json`.
pub fn report_keys(key: &str) -> (String, String) {
    let name = key.strip_prefix(INCOMING_PREFIX).unwrap_or(key);
    (format!("{REPORTS_PREFIX}{name}.json"), format!("{REPORTS_PREFIX}{name}.rejected.csv"))
}

#[tracing::instrument(skip_all, fields(key))]
pub async fn import_object(services: &Services, bucket: &str, key: &str) -> Result<Imported, Unexpected> {
    if !key.starts_with(INCOMING_PREFIX) {
        return Ok(Imported::Ignored);
    }
    tracing::Span::current().record("key", key);
    let started = Instant::now();
    let temp = TempDir::new()?;
    let source = temp.path.join("source");
    let etag = services.files.download(bucket, key, &source).await?;
    let tags = services.files.tags(bucket, key).await?;
    if tags.get("import-status").map(String::as_str) == Some("processed") && tags.get("import-etag") == Some(&etag) {
        tracing::info!("already processed; nothing to do");
        return Ok(Imported::AlreadyProcessed);
    }

    let mut report = ImportReport { file: key.to_owned(), status: "loaded", ..ImportReport::default() };
    let rejected_path = temp.path.join("rejected.csv");
    let outcome = load(services, &source, &rejected_path, &mut report).await?;
    if let Err(problem) = outcome {
        report.status = "file_rejected";
        report.problem = Some(ProblemReport { code: problem.code(), message: problem.message() });
    }
    let (json_key, rejected_key) = report_keys(key);
    if report.rejected > 0 {
        services.files.upload_file(bucket, &rejected_key, &rejected_path, "text/csv; charset=utf-8").await?;
        report.rejected_rows_report = Some(rejected_key);
    }
    report.duration_ms = started.elapsed().as_millis();
    let json = serde_json::to_vec_pretty(&report).context("encoding the import report")?;
    services.files.put(bucket, &json_key, json, "application/json").await?;
    services
        .files
        .set_tags(bucket, key, &[("import-status", "processed"), ("import-etag", &etag), ("import-report", &json_key)])
        .await?;
    tracing::info!(
        rows_read = report.rows_read,
        loaded = report.loaded,
        unchanged = report.unchanged,
        rejected = report.rejected,
        status = report.status,
        "billing file imported"
    );
    Ok(Imported::Done(Box::new(report)))
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

/// The first pass: where the header is, and for every account the line it
/// first appears on and whether it appears again with different data.
struct Survey {
    format: Format,
    header_line: u64,
    columns: ColumnMap,
    accounts: AccountIndex,
}

/// Per distinct account: the line it first appears on and whether it
/// appears again with different data. Kept as a sorted vector of 16-byte
/// entries, so 1,000,000 accounts take 16 MB whatever the rows hold.
#[derive(Default)]
pub struct AccountIndex {
    entries: Vec<IndexEntry>,
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
fn account_key(account: &BillingAccount) -> u64 {
    account.account.as_str().parse().unwrap_or_else(|_| {
        let mut hasher = DefaultHasher::new();
        account.account.as_str().hash(&mut hasher);
        hasher.finish()
    })
}

impl AccountIndex {
    fn record(&mut self, account: &BillingAccount, line: u64) {
        let line = u32::try_from(line).unwrap_or(CONFLICTING - 1);
        self.entries.push(IndexEntry { key: account_key(account), fingerprint: fingerprint(account), line });
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
        let key = account_key(account);
        self.entries.binary_search_by_key(&key, |e| e.key).ok().and_then(|i| self.entries.get(i))
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

fn fingerprint(account: &BillingAccount) -> u32 {
    let mut hasher = DefaultHasher::new();
    account.full_name.as_str().hash(&mut hasher);
    account.address.hash(&mut hasher);
    account.balance.map(|b| b.0).hash(&mut hasher);
    // Folded to 32 bits: two different rows of one account look alike with
    // a chance of one in four billion.
    let hash = hasher.finish();
    (hash ^ (hash >> 32)) as u32
}

/// Finds the header among the first rows and indexes the accounts (see
/// [`AccountIndex`]).
pub fn survey(path: &Path) -> Result<(Format, u64, ColumnMap, AccountIndex), FileProblem> {
    let format = billing::detect(path)?;
    let mut header: Option<(u64, ColumnMap)> = None;
    let mut partial_header: Option<billing::MissingColumns> = None;
    let mut searched = 0;
    let mut accounts = AccountIndex::default();
    let mut any_row = false;
    billing::visit_rows(path, format, |row| {
        if billing::rows::is_blank(&row) {
            return ControlFlow::Continue(());
        }
        any_row = true;
        match &header {
            None => {
                match ColumnMap::from_header(&row.cells) {
                    Ok(columns) => header = Some((row.line, columns)),
                    Err(missing) if !(missing.account && missing.full_name) => partial_header = Some(missing),
                    Err(_) => {}
                }
                searched += 1;
                if header.is_none() && searched >= HEADER_SEARCH_ROWS {
                    return ControlFlow::Break(());
                }
            }
            Some((_, columns)) => {
                if let Ok(account) = billing::validate(&row, columns, OffsetDateTime::UNIX_EPOCH) {
                    accounts.record(&account, row.line);
                }
            }
        }
        ControlFlow::Continue(())
    })?;
    if !any_row {
        return Err(FileProblem::Empty);
    }
    accounts.seal();
    match (header, partial_header) {
        (Some((line, columns)), _) => Ok((format, line, columns, accounts)),
        (None, Some(missing)) => {
            Err(FileProblem::MissingColumns { account: missing.account, full_name: missing.full_name })
        }
        (None, None) => Err(FileProblem::NoHeader),
    }
}

/// What the reading thread hands to the writers.
enum Parsed {
    Row(BillingAccount),
    /// A row identical to one before it.
    Repeat,
    Rejected(RejectedRow),
}

async fn load(
    services: &Services,
    source: &Path,
    rejected_path: &Path,
    report: &mut ImportReport,
) -> Result<Result<(), FileProblem>, Unexpected> {
    let path = source.to_owned();
    let surveyed = tokio::task::spawn_blocking(move || survey(&path)).await.context("surveying a billing file")?;
    let survey = match surveyed {
        Ok((format, header_line, columns, accounts)) => Survey { format, header_line, columns, accounts },
        Err(problem) => return Ok(Err(problem)),
    };
    report.format = Some(match survey.format {
        Format::Csv { encoding, delimiter } => {
            let delimiter = match delimiter {
                b'\t' => "tab".to_owned(),
                other => char::from(other).to_string(),
            };
            format!("CSV, {encoding}, delimiter {delimiter}")
        }
        Format::Xlsx => "XLSX".to_owned(),
    });
    report.columns_recognized = survey.columns.recognized.clone();
    report.columns_ignored = survey.columns.ignored.clone();

    let (sender, receiver) = tokio::sync::mpsc::channel::<Parsed>(BATCH_SIZE * WRITERS * 4);
    let path = source.to_owned();
    let loaded_at = clock::now();
    let reader = tokio::task::spawn_blocking(move || {
        billing::visit_rows(&path, survey.format, |row: RawRow| {
            if row.line <= survey.header_line || billing::rows::is_blank(&row) {
                return ControlFlow::Continue(());
            }
            let parsed = match billing::validate(&row, &survey.columns, loaded_at) {
                Ok(account) => match survey.accounts.verdict(&account, row.line) {
                    Verdict::Load => Parsed::Row(account),
                    // The same row again: loaded once.
                    Verdict::Repeat => Parsed::Repeat,
                    Verdict::Conflicting => Parsed::Rejected(RejectedRow {
                        line: row.line,
                        column: Some(billing::Column::Account),
                        reason: "Лицевой счёт встречается в файле несколько раз с разными данными; ни одна из этих строк не загружена.".into(),
                        value: account.account.to_string(),
                    }),
                },
                Err(rejected) => Parsed::Rejected(rejected),
            };
            if sender.blocking_send(parsed).is_err() {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })
    });

    let mut rejected_csv = RejectedCsv::create(rejected_path)?;
    let mut rows = tokio_stream(receiver);
    let mut batches = futures::stream::poll_fn(move |cx| {
        // Gather up to BATCH_SIZE accounts; rejected rows pass through.
        let mut batch = Vec::new();
        loop {
            match rows.poll_next_unpin(cx) {
                std::task::Poll::Ready(Some(Parsed::Row(account))) => {
                    batch.push(Ok(account));
                    if batch.len() >= BATCH_SIZE {
                        return std::task::Poll::Ready(Some(batch));
                    }
                }
                std::task::Poll::Ready(Some(Parsed::Repeat)) => {
                    batch.push(Err(None));
                    if batch.len() >= BATCH_SIZE {
                        return std::task::Poll::Ready(Some(batch));
                    }
                }
                std::task::Poll::Ready(Some(Parsed::Rejected(row))) => {
                    batch.push(Err(Some(row)));
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
    .map(|batch: Vec<Result<BillingAccount, Option<RejectedRow>>>| async move {
        let mut accounts = Vec::new();
        let mut rejected = Vec::new();
        let mut repeats = 0u64;
        for entry in batch {
            match entry {
                Ok(account) => accounts.push(account),
                Err(Some(row)) => rejected.push(row),
                Err(None) => repeats += 1,
            }
        }
        let written = write_batch(services, &accounts).await;
        (accounts.len() as u64 + repeats, rejected, written)
    })
    // `buffered` keeps batches in file order, so the rejected rows are too.
    .buffered(WRITERS);

    let mut failure = None;
    while let Some((count, rejected, written)) = batches.next().await {
        report.rows_read += count + rejected.len() as u64;
        report.rejected += rejected.len() as u64;
        for row in &rejected {
            rejected_csv.write(row)?;
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
    rejected_csv.finish()?;
    Ok(read)
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
    let stored = services.store.billing_accounts(&numbers).await?;
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
    services.store.put_billing_accounts(&changed).await?;
    outcome.changed = changed.len() as u64;
    Ok(outcome)
}

/// Suspends the resident of an account whose payer changed (if they no
/// longer match), re-queues identification and tells them by e-mail.
async fn suspend(services: &Services, account: &BillingAccount) -> Result<bool, Unexpected> {
    let Some(resident) = services.store.resident(&account.account).await? else {
        return Ok(false);
    };
    if !matches!(resident.status, ResidentStatus::Active | ResidentStatus::AwaitingIdentification)
        || resident.full_name.matches(&account.full_name)
    {
        return Ok(false);
    }
    let now = clock::now();
    let ready_at = clock::ceil_to_second(now + services.config.identify_delay);
    if !services.store.suspend_resident(&account.account, account.full_name.as_str(), ready_at).await? {
        return Ok(false);
    }
    let base_url = resident.cabinet_url.clone().or_else(|| services.config.public_base_url.clone()).unwrap_or_default();
    let job = IdentificationJob { account: account.account.clone(), not_before: ready_at, base_url };
    services.queue.schedule(&job, now).await?;
    let letter = letters::suspended(&resident.email, &resident.account, &clock::moscow(ready_at))?;
    if let Err(error) = services.mailer.send(&letter).await {
        // The suspension stands and identification follows; the outcome
        // letter still reaches the resident.
        tracing::error!(error = %error, "the suspension letter could not be sent");
    }
    tracing::info!(account = %account.account, "resident suspended: the payer changed");
    Ok(true)
}

/// The rejected rows as CSV that Excel opens correctly: UTF-8 with BOM, `;`.
struct RejectedCsv {
    writer: csv::Writer<std::fs::File>,
}

impl RejectedCsv {
    fn create(path: &Path) -> Result<Self, Unexpected> {
        use std::io::Write;
        let mut file = std::fs::File::create(path).context("creating the rejected-rows report")?;
        file.write_all(&[0xEF, 0xBB, 0xBF]).context("writing the rejected-rows report")?;
        let mut writer = csv::WriterBuilder::new().delimiter(b';').from_writer(file);
        writer
            .write_record(["Строка", "Столбец", "Причина", "Значение"])
            .context("writing the rejected-rows report")?;
        Ok(Self { writer })
    }

    fn write(&mut self, row: &RejectedRow) -> Result<(), Unexpected> {
        let line = row.line.to_string();
        let column = row.column.map_or("", billing::Column::label);
        self.writer
            .write_record([line.as_str(), column, row.reason.as_str(), row.value.as_str()])
            .context("writing the rejected-rows report")
    }

    fn finish(mut self) -> Result<(), Unexpected> {
        self.writer.flush().context("writing the rejected-rows report")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    fn survey_bytes(bytes: &[u8]) {
        let path = std::env::temp_dir().join(format!("fuzz-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, bytes).unwrap();
        // Any outcome but a panic is fine.
        let _ = survey(&path);
        std::fs::remove_file(&path).unwrap();
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

    #[test]
    fn reports_are_named_after_the_file() {
        assert_eq!(
            report_keys("incoming/2026-11/ls.csv"),
            ("reports/2026-11/ls.csv.json".to_owned(), "reports/2026-11/ls.csv.rejected.csv".to_owned())
        );
    }
}
