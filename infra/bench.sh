#!/usr/bin/env bash
# Benchmarks of the billing import: parse+validate for 10k/100k/1M rows and
# the whole import against moto's server (100k rows; IMPORT_ROWS to change).
set -euo pipefail
cd "$(dirname "$0")/.."
infra/setup.sh
source infra/moto.sh
start_moto
cargo run --release --quiet -p local-stack --example import_bench -- "--import-rows=${IMPORT_ROWS:-100000}"
