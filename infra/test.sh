#!/usr/bin/env bash
# Runs every check and test on a fresh machine: installs what they need
# (a venv with moto, cfn-lint and aws-sam-cli; Debian's chromium and chromium-driver;
# axe-core from npm),
# starts moto's server and chromedriver, then formatting, clippy, all Rust
# tests (unit, property, against moto over HTTP and S3, in the browser),
# cfn-lint with the serverless rules, sam validate --lint and cargo deny.
set -euo pipefail
cd "$(dirname "$0")/.."
infra/setup.sh
mkdir -p .local
# cargo-deny builds (some 5 CPU-minutes) while apt installs the browser.
infra/deny.sh --install >.local/deny-install.log 2>&1 &
deny_install=$!
source infra/moto.sh
install_chromium
start_moto
start_chromedriver

if ! wait "$deny_install"; then
  cat .local/deny-install.log
  exit 1
fi
infra/deny.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo test"
log=.local/cargo-test.log
mkdir -p .local
# Bounded, so a hung browser session cannot hold CI for its whole limit.
timeout 2400 cargo test --workspace --lib --bins --tests 2>&1 | tee "$log"
echo "==> cfn-lint template.yaml (with the serverless rules)"
.venv/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
echo "==> sam validate --lint"
# Offline: the SAM transform and its linter, no AWS account needed.
SAM_CLI_TELEMETRY=0 .venv/bin/sam validate --lint --template-file template.yaml
echo "==> schemathesis: openapi.yaml against the local stack"
# Generated requests to every operation (valid and invalid ones) must never
# get a 5xx or an answer the contract does not describe.
cargo build --quiet -p local-stack
port="$(free_port)"
STACK_PREFIX="schema$port" PORT="$port" IDENTIFY_DELAY_SECONDS=2 "${CARGO_TARGET_DIR:-target}/debug/local-stack" >.local/schemathesis-stack.log 2>&1 &
stop_on_exit $!
wait_until_up "local stack" "http://127.0.0.1:$port/login" .local/schemathesis-stack.log
# A resident with a live session and a registration cookie, so that the
# operations behind them are exercised too.
cookies="$(python3 - "http://127.0.0.1:$port" <<'PY'
import json, re, sys, time, urllib.request
base = sys.argv[1]
def call(path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, headers={"content-type": "application/json", "accept": "application/json"})
    return urllib.request.urlopen(request)
password = "синий трамвай"
registered = call("/register", {"account": "100200303", "full_name": "Петров П. П.", "phone": "+7 916 000-00-00",
                                "email": "schema@example.ru", "password": password, "password_confirm": password, "consent": True})
registration = registered.headers.get("set-cookie").split(";")[0]
letters = json.load(call("/_local/mail.json"))
call(re.search(r"/confirm\?token=\S+", letters[-1]["text"]).group(0))
for _ in range(60):
    try:
        session = call("/login", {"login": "100200303", "password": password}).headers.get("set-cookie").split(";")[0]
        break
    except urllib.error.HTTPError:
        time.sleep(0.5)
print(f"{session}; {registration}")
PY
)"
.venv/bin/schemathesis run openapi.yaml --url "http://127.0.0.1:$port" -H "Cookie: $cookies" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --max-examples 100 --seed 20261125 2>&1 | tee .local/schemathesis.log | tail -n 25
schema_cases="$(grep -Eo '[0-9]+ generated, [0-9]+ passed' .local/schemathesis.log | tail -n 1)"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
echo "schemathesis: ${schema_cases:-no summary} cases"
