#!/usr/bin/env bash
# Runs every check and test on a fresh machine: installs what they need
# (a venv with moto and cfn-lint; Debian's chromium and chromium-driver),
# starts moto's server and chromedriver, then formatting, clippy, all Rust
# tests (unit, property, against moto over HTTP and S3, in the browser) and
# cfn-lint.
set -euo pipefail
cd "$(dirname "$0")/.."
infra/setup.sh
source infra/moto.sh
install_chromium
start_moto
start_chromedriver

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo test"
log=.local/cargo-test.log
mkdir -p .local
# Bounded, so a hung browser session cannot hold CI for its whole limit.
timeout 2400 cargo test --workspace --lib --bins --tests 2>&1 | tee "$log"
echo "==> cfn-lint template.yaml"
.venv/bin/cfn-lint template.yaml
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
