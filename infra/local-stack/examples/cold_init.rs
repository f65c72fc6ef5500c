#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a benchmark: a failed step ends it

//! Cold init of function binaries (`infra/bench.sh`): the time from spawning
//! the process to its first `GET /runtime/invocation/next` on a Runtime API
//! served here, median of `--runs` starts (15), for each binary given; the
//! binaries take turns, so the first one given (the reference) is measured
//! over the same stretch of time as the others.
//!
//! `cold_init [--runs=N] NAME=PATH...`

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The environment `template.yaml` gives every function, with values that
/// need no AWS: init reads them, the first request would use them.
const ENVIRONMENT: &[(&str, &str)] = &[
    ("RESIDENTS_TABLE", "Residents"),
    ("BILLING_TABLE", "BillingAccounts"),
    ("AUDIT_TABLE", "Audit"),
    ("IDENTIFY_QUEUE_URL", "http://127.0.0.1:9/000000000000/IdentifyQueue"),
    ("MAIL_FROM", "cabinet@example.com"),
    ("BILLING_BUCKET", "billing"),
    ("AWS_REGION", "eu-central-1"),
    ("AWS_DEFAULT_REGION", "eu-central-1"),
    ("AWS_ACCESS_KEY_ID", "bench"),
    ("AWS_SECRET_ACCESS_KEY", "bench"),
    ("AWS_LAMBDA_FUNCTION_NAME", "bench"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"),
    ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
    ("AWS_LAMBDA_LOG_GROUP_NAME", "bench"),
];

/// One start: spawn → the first request line on the Runtime API.
fn cold_init(path: &str) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    let started = Instant::now();
    let mut child = Command::new(path)
        .env_clear()
        .envs(ENVIRONMENT.iter().copied())
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let (stream, _) = listener.accept().expect("the function connects");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("a request line");
    let elapsed = started.elapsed();
    assert!(line.contains("/runtime/invocation/next"), "{path} asked {line:?} first");
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn main() {
    let mut runs = 15;
    let mut binaries = Vec::new();
    for arg in std::env::args().skip(1) {
        if let Some(n) = arg.strip_prefix("--runs=") {
            runs = n.parse().expect("a number of runs");
        } else {
            let (name, path) = arg.split_once('=').expect("NAME=PATH");
            binaries.push((name.to_owned(), path.to_owned()));
        }
    }
    // One start of each first, so every binary is read from the page cache.
    for (_, path) in &binaries {
        cold_init(path);
    }
    // Round by round, every binary once, in an order that turns each round:
    // whatever else the machine does drifts into every binary's times alike,
    // not into the reference's alone.
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); binaries.len()];
    for round in 0..runs {
        for offset in 0..binaries.len() {
            let index = (round + offset) % binaries.len();
            times[index].push(cold_init(&binaries[index].1));
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut reference = None;
    for ((name, path), mut times) in binaries.iter().zip(times) {
        times.sort();
        let (quarter, median, three_quarters) =
            (ms(times[times.len() / 4]), ms(times[times.len() / 2]), ms(times[times.len() * 3 / 4]));
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / 1_048_576.0;
        let reference_ms = *reference.get_or_insert(median);
        println!(
            "cold init {name:<16} {median:>6.2} ms (median of {runs}, middle half {quarter:.2}–{three_quarters:.2}), \
             {:>4.2}x hello-world; binary {size:>5.1} MiB",
            median / reference_ms
        );
    }
}
