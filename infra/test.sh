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
cargo test --workspace
echo "==> cfn-lint template.yaml"
.venv/bin/cfn-lint template.yaml
echo "==> all checks passed"
