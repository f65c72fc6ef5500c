#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a benchmark on generated data: a failed step ends it

//! Billing import benchmark: prints rows per second and peak memory.
//!
//! `cargo run --release -p local-stack --example import_bench` generates
//! realistic exports of 10,000, 100,000 and 1,000,000 rows and measures
//! reading and validation alone (each size in its own process, so peak
//! memory is that size's). With `AWS_ENDPOINT_URL` set to moto's server
//! (`infra/bench.sh` does that) it also runs the whole import — upload,
//! S3 notification, DynamoDB writes, report — for 100,000 rows.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use cabinet::billing::{self, RowOutcome, source::ReadLimits};
use cabinet::usecases::import::{survey, survey_spooled};

const SURNAMES: &[&str] = &["Иванов", "Петров", "Смирнов", "Кузнецов", "Соколов", "Попов", "Лебедев", "Козлов"];
const NAMES: &[&str] = &["Иван", "Пётр", "Алексей", "Сергей", "Андрей", "Дмитрий", "Михаил", "Николай"];
const PATRONYMICS: &[&str] = &["Иванович", "Петрович", "Сергеевич", "Андреевич", "Михайлович", "Николаевич"];

/// A 1C-style export: Windows-1251, `;`, quoted addresses, balances with
/// spaces and commas.
fn generate(path: &Path, rows: usize) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut text = String::from("Лицевой счет;ФИО плательщика;Адрес;Площадь;Сальдо\r\n");
    for i in 0..rows {
        let surname = SURNAMES[i % SURNAMES.len()];
        let name = NAMES[(i / 8) % NAMES.len()];
        let patronymic = PATRONYMICS[(i / 64) % PATRONYMICS.len()];
        let balance = (i as i64 * 7919) % 2_000_000 - 500_000;
        text.push_str(&format!(
            "{:09};{surname} {name} {patronymic};\"г. Москва, ул. Садовая, д. {}, кв. {}\";{},{};{} {:03},{:02}\r\n",
            100_000_000 + i,
            i / 200 + 1,
            i % 200 + 1,
            40 + i % 50,
            i % 10,
            balance / 100_000,
            (balance / 100 % 1000).abs(),
            (balance % 100).abs(),
        ));
        if text.len() > 1 << 20 {
            out.write_all(&encoding_rs::WINDOWS_1251.encode(&text).0)?;
            text.clear();
        }
    }
    out.write_all(&encoding_rs::WINDOWS_1251.encode(&text).0)?;
    out.flush()
}

/// Peak resident memory of this process, in MiB (Linux).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Where the bench keeps the first pass's outcomes, as the import keeps
/// them in its temporary folder.
fn spool_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("bench-outcomes-{}.spool", std::process::id()))
}

/// Reads and validates a file the way the import does (both passes: the
/// first parses and checks, the second reads the checked rows back).
fn parse_only(path: &std::path::Path, label: &str, rows: usize) {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let baseline = peak_rss_mib();
    let started = Instant::now();
    let (table, accounts, spool) = survey_spooled(path, &ReadLimits::default(), &spool_path()).expect("a valid file");
    let mut valid = 0u64;
    let mut rejected = 0u64;
    let now = cabinet::clock::now();
    // The second pass as the import makes it: every data row's outcome,
    // the accounts owned, to be written; read back from the spool, or, past
    // the spool's budget, parsed again.
    let mut count = |outcome: RowOutcome| {
        match outcome {
            RowOutcome::Account { account, .. } if !accounts.is_conflicting(&account) => valid += 1,
            RowOutcome::Skipped => {}
            _ => rejected += 1,
        }
        ControlFlow::Continue(())
    };
    let second_pass = match &spool {
        Some(spool) => {
            spool.visit(now, |_, outcome| count(outcome)).expect("readable");
            "spool"
        }
        None => {
            billing::visit_outcomes(path, &table, |_, outcome| count(outcome.into_owned(now))).expect("readable");
            "parsed again"
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    drop(spool);
    println!(
        "parse+validate {label} {rows:>9} rows ({:>6.1} MiB file): {:>8.2} s, {:>9.0} rows/s, peak memory {:>6.1} MiB (before reading {:.1} MiB); valid {valid}, rejected {rejected}; second pass: {second_pass}",
        size as f64 / 1048576.0,
        seconds,
        rows as f64 / seconds,
        peak_rss_mib(),
        baseline,
    );
}

/// Where the time of [`parse_only`] goes: reading and splitting alone (no
/// row looked at), the first pass without and with the spool, the second
/// pass.
fn stages(path: &Path) {
    let timed = |label: &str, run: &mut dyn FnMut()| {
        let started = Instant::now();
        run();
        println!("stage {label:<28} {:>6.2} s", started.elapsed().as_secs_f64());
    };
    let (table, _) = survey(path, &ReadLimits::default()).expect("a valid file");
    timed("read and split, no visit", &mut || {
        billing::visit_row_refs(path, &table.format, |_| ControlFlow::Continue(())).expect("readable")
    });
    timed("first pass, no spool", &mut || {
        survey(path, &ReadLimits::default()).expect("a valid file");
    });
    let mut surveyed = None;
    timed("first pass (survey, spool)", &mut || {
        surveyed = Some(survey_spooled(path, &ReadLimits::default(), &spool_path()).expect("a valid file"));
    });
    let (_, accounts, spool) = surveyed.expect("surveyed");
    let spool = spool.expect("a spool");
    let now = cabinet::clock::now();
    timed("second pass (spool)", &mut || {
        let mut valid = 0u64;
        spool
            .visit(now, |_, outcome| {
                if let RowOutcome::Account { account, .. } = outcome {
                    valid += u64::from(!accounts.is_conflicting(&account));
                }
                ControlFlow::Continue(())
            })
            .expect("readable");
    });
}

/// A Windows-1251 CSV as 1C writes it, or an XLSX as Excel writes it (made
/// by the corpus script `tests/data/billing/make_corpus.py`).
fn parse_generated(kind: &str, rows: usize) {
    let path = std::env::temp_dir().join(format!("bench-{rows}.{kind}"));
    if kind == "xlsx" {
        let script = local_stack::repo_root().join("tests/data/billing/make_corpus.py");
        let status = std::process::Command::new("python3")
            .arg(script)
            .arg(format!("--xlsx-rows={rows}"))
            .arg("--out")
            .arg(&path)
            .status()
            .expect("python3 runs the corpus script");
        assert!(status.success(), "the corpus script failed");
    } else {
        generate(&path, rows).expect("generating the file");
    }
    parse_only(&path, &format!("{kind:>4}"), rows);
    let _ = std::fs::remove_file(&path);
}

/// The password hash the cabinet computes (argon2id m=19456 t=2 p=1), median of 15.
async fn argon2_median() {
    let password = |i: usize| cabinet::domain::Password::from_login_input(&format!("correct horse battery staple {i}"));
    cabinet::domain::hash_password(password(99)).await.expect("a hash");
    let mut times = Vec::new();
    for i in 0..15 {
        let started = Instant::now();
        cabinet::domain::hash_password(password(i)).await.expect("a hash");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!("argon2id this project (argon2 crate): {:>6.1} ms median of 15", times[times.len() / 2]);
}

async fn whole_import(endpoint: &str, rows: usize) {
    let path = std::env::temp_dir().join(format!("bench-import-{rows}.csv"));
    generate(&path, rows).expect("generating the file");
    let mut options = local_stack::Options::new(endpoint, format!("bench{}", std::process::id()));
    options.billing_file = None;
    let stack = local_stack::start(options).await.expect("the local stack starts");
    let started = Instant::now();
    let report = stack.upload_billing_file(&path).await.expect("the import reports");
    let seconds = started.elapsed().as_secs_f64();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap_or_default();
    println!(
        "whole import   {rows:>9} rows against the local endpoint: {:>8.2} s, {:>9.0} rows/s, loaded {}, peak memory of the stack process {:.1} MiB",
        seconds,
        rows as f64 / seconds,
        report["loaded"],
        peak_rss_mib(),
    );
    let _ = std::fs::remove_file(&path);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    // infra/bench.sh: one file for this reader and the Python baseline.
    if let Some((path, rows)) = args.get(1).and_then(|a| a.strip_prefix("--generate=")).and_then(|a| a.rsplit_once(':'))
    {
        generate(Path::new(path), rows.parse().expect("a row count")).expect("generating the file");
        return;
    }
    if let Some((path, rows)) =
        args.get(1).and_then(|a| a.strip_prefix("--parse-file=")).and_then(|a| a.rsplit_once(':'))
    {
        parse_only(Path::new(path), " csv", rows.parse().expect("a row count"));
        return;
    }
    if let Some(path) = args.get(1).and_then(|a| a.strip_prefix("--stages=")) {
        stages(Path::new(path));
        return;
    }
    if args.get(1).map(String::as_str) == Some("--argon2") {
        argon2_median().await;
        return;
    }
    if let Some((kind, rows)) = args.get(1).and_then(|a| a.strip_prefix("--parse=")).and_then(|a| a.split_once(':')) {
        parse_generated(kind, rows.parse().expect("a row count"));
        return;
    }
    // Each size in its own process, so peak memory is that size's alone.
    let me = std::env::current_exe().expect("own path");
    for (kind, rows) in [("csv", 10_000), ("csv", 100_000), ("csv", 1_000_000), ("xlsx", 100_000), ("xlsx", 1_000_000)]
    {
        let status =
            std::process::Command::new(&me).arg(format!("--parse={kind}:{rows}")).status().expect("a child process");
        assert!(status.success());
    }
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) => {
            let rows = args
                .get(1)
                .and_then(|a| a.strip_prefix("--import-rows="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(100_000);
            whole_import(&endpoint, rows).await
        }
        Err(_) => println!("whole import: skipped, AWS_ENDPOINT_URL is not set (run infra/bench.sh)"),
    }
}
