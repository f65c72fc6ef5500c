//! A deployed function, run as Lambda runs it: its binary, built by cargo as
//! for deployment, started with only the environment Lambda gives it, fed
//! events through the Runtime API.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use local_stack::template::Function as Declared;
use serde_json::Value;

use crate::api::{Outcome, RuntimeApi};

/// Where the function binaries are: built once per run of this test binary
/// by cargo as for deployment (`cargo lambda build` builds the workspace's
/// binaries; `cargo test --bins` only makes test harnesses of the same
/// `main.rs`, which is how the account binary once stopped building
/// unnoticed), into the target directory this test runs from.
///
/// `--examples` (the local stack's benchmark) makes cargo resolve features
/// with the dev-dependencies, as `cargo test` does, so the libraries it
/// built are reused and only the binaries are linked: without it, cargo
/// rebuilds the AWS SDKs and everything else above the three crates whose
/// features proptest (a dev-dependency) turns on (getrandom `std`,
/// regex-syntax `unicode`, num-traits `std`). Measured after the rest of
/// `cargo test` had built, on two cores shared with other builds: 4.5 min
/// without, 40 s with. Those features, and the ones the local stack asks
/// for (the deployed build takes only the workspace's default members, the
/// functions), are the difference from the deployed build, besides the
/// profile and the architecture.
pub fn binaries() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's own path");
        // <target>/<profile>/deps/<this test>
        let profile_dir = exe.parent().and_then(Path::parent).expect("the profile directory").to_owned();
        let target_dir = profile_dir.parent().expect("the target directory");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command
            .args(["build", "--workspace", "--bins", "--examples", "--quiet", "--target-dir"])
            .arg(target_dir)
            .current_dir(local_stack::repo_root());
        if profile_dir.file_name().is_some_and(|name| name == "release") {
            command.arg("--release");
        }
        let started = Instant::now();
        let output = command.output().expect("cargo runs");
        assert!(
            output.status.success(),
            "cargo build --workspace --bins --examples failed: the deployed binaries do not build\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!("function binaries built in {:.1} s", started.elapsed().as_secs_f64());
        profile_dir
    })
}

/// The region the lane's world lives in (moto keeps one per region).
pub const REGION: &str = "us-east-1";
const ACCOUNT_ID: &str = "123456789012";

/// A function's process under the Runtime API.
pub struct Function {
    pub binary: String,
    pub timeout: Duration,
    api: RuntimeApi,
    child: Mutex<Child>,
    log: Arc<Mutex<String>>,
}

impl Drop for Function {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn capture(stream: impl std::io::Read + Send + 'static, log: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
}

impl Function {
    /// Starts the binary of `declared` with exactly what Lambda gives a
    /// `provided.al2023` function: its reserved variables, the template's
    /// `environment`, and, as the one addition, `AWS_ENDPOINT_URL` (moto).
    /// Returns once it asks for its first event (its start-up is done), or
    /// the reason it never did: an init error, an exit, silence.
    pub async fn start(
        declared: &Declared,
        environment: &HashMap<String, String>,
        endpoint: &str,
    ) -> Result<Self, String> {
        let name = format!("cabinet-{}-R7kq2X9m4D", declared.logical_id);
        let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}");
        let api = RuntimeApi::start(&arn).await.map_err(|e| format!("the runtime API: {e}"))?;
        let path = binaries().join(&declared.binary);
        let mut command = Command::new(&path);
        command
            .env_clear()
            // Lambda's reserved variables.
            .env("AWS_LAMBDA_RUNTIME_API", api.address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", declared.memory_size.to_string())
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/25/[$LATEST]4f1c2e8d9a0b4c3d8e7f6a5b4c3d2e1f")
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "ASIAXLQ4EXAMPLE7XMPL")
            .env("AWS_SECRET_ACCESS_KEY", "lane-secret")
            .env("AWS_SESSION_TOKEN", "lane-session")
            .env("_HANDLER", "bootstrap")
            .env("LAMBDA_TASK_ROOT", "/var/task")
            .env("LAMBDA_RUNTIME_DIR", "/var/runtime")
            .env("LANG", "en_US.UTF-8")
            .env("TZ", ":UTC")
            .env("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin")
            .envs(environment)
            .env("AWS_ENDPOINT_URL", endpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| format!("{}: {e}", path.display()))?;
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(stdout) = child.stdout.take() {
            capture(stdout, log.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            capture(stderr, log.clone());
        }
        let function = Self {
            binary: declared.binary.clone(),
            timeout: Duration::from_secs(u64::try_from(declared.timeout).unwrap_or(3)),
            api,
            child: Mutex::new(child),
            log,
        };
        // Lambda's init phase is limited to 10 s.
        let started = Instant::now();
        loop {
            let init_errors = function.api.init_errors();
            if !init_errors.is_empty() {
                return Err(function.failure(&format!("init error: {}", init_errors.join("; "))));
            }
            if let Some(status) = function.exited() {
                return Err(function.failure(&format!("exited during start-up ({status})")));
            }
            if function.api.polls() > 0 {
                return Ok(function);
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(function.failure("did not ask for an event within Lambda's 10 s init limit"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn exited(&self) -> Option<std::process::ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    /// What the function logged so far (JSON lines).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn failure(&self, what: &str) -> String {
        format!("{}: {what}\n--- its log ---\n{}", self.binary, self.log())
    }

    /// One invocation: the function's response payload, or why there was
    /// none (its error, a crash, the timeout).
    pub async fn invoke(&self, event: &Value) -> Result<Value, String> {
        let (request_id, mut outcome) = self.api.invoke(Bytes::from(event.to_string()), self.timeout);
        let started = Instant::now();
        loop {
            match tokio::time::timeout(Duration::from_millis(20), &mut outcome).await {
                Ok(Ok(Outcome::Response(body))) => {
                    return serde_json::from_slice(&body).map_err(|e| {
                        let body = String::from_utf8_lossy(&body);
                        self.failure(&format!("{request_id}: the response is not JSON ({e}): {body}"))
                    });
                }
                Ok(Ok(Outcome::Error { error_type, body })) => {
                    let body = String::from_utf8_lossy(&body);
                    return Err(self.failure(&format!("{request_id}: invocation error {error_type}: {body}")));
                }
                Ok(Err(_)) => return Err(self.failure(&format!("{request_id}: the runtime API lost it"))),
                Err(_) => {}
            }
            if let Some(status) = self.exited() {
                return Err(self.failure(&format!("{request_id}: the process exited ({status})")));
            }
            // Lambda stops it at the timeout; the function answers before.
            if started.elapsed() > self.timeout + Duration::from_secs(1) {
                return Err(self.failure(&format!("{request_id}: timed out after {:?}", self.timeout)));
            }
        }
    }
}
