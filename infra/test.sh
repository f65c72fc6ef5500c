#!/usr/bin/env bash
# Runs every check and test on a fresh machine: installs what they need,
# starts moto's server, then formatting, clippy, all Rust tests (unit,
# property, adapters against moto, end to end over HTTP) and cfn-lint.
set -euo pipefail
cd "$(dirname "$0")/.."
infra/setup.sh
source infra/moto.sh
start_moto

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo test"
log=.local/cargo-test.log
mkdir -p .local
cargo test --workspace --lib --bins --tests 2>&1 | tee "$log"
echo "==> cfn-lint template.yaml"
.venv/bin/cfn-lint template.yaml
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
