#!/usr/bin/env bash
# Benchmarks, each next to its reference from the same run (release builds
# only here; CI, infra/test.sh, never runs this):
#   - cold init (spawn → first `next` on a Runtime API) of every function
#     as `sam build` builds them, against a hello-world lambda_http binary
#     built with the same profile in a workspace of its own,
#     median of 61 starts taken in turns with it, with the binary sizes;
#   - the billing reader (parse+validate, both passes) against a plain Python
#     `csv` script on the same generated 1,000,000-row Windows-1251 file;
#   - argon2id m=19456 t=2 p=1 against libargon2 through argon2-cffi;
#   - then the reader at 10k/100k/1M rows and XLSX, and the whole import
#     against moto's server (100k rows; IMPORT_ROWS to change).
set -euo pipefail
cd "$(dirname "$0")/.."
infra/setup.sh

functions=(register confirm-email login password account pages identify mail-events import-accounts import-failures)
# The benchmarks' own programs (the local stack's examples), then the
# functions as `sam build` builds them: the workspace's default members, so
# the features the local stack and the tests ask for stay out of them. The
# two feature sets are compiled apart (the dependencies twice).
cargo build --release --quiet -p local-stack --examples
cargo build --release --quiet --bins
release=target/release
# The reference: a workspace of its own (no cabinet feature unified into
# it), with the same release profile.
release_profile() { sed -n '/^\[profile\.release\]$/,/^$/p' "$1" | grep -v -e '^#' -e '^$'; }
hello=infra/bench/hello-lambda
if ! diff <(release_profile Cargo.toml) <(release_profile "$hello/Cargo.toml"); then
  echo "bench: $hello/Cargo.toml's release profile differs from Cargo.toml's" >&2
  exit 1
fi
CARGO_TARGET_DIR=target/hello-lambda cargo build --release --quiet --locked --manifest-path "$hello/Cargo.toml"

echo "== $(date -u +%Y-%m-%d), $(nproc) cores, release profile of Cargo.toml"
echo "-- cold init (reference: hello-world lambda_http, same profile)"
binaries=("hello-world=target/hello-lambda/release/hello-lambda")
for f in "${functions[@]}"; do binaries+=("$f=$release/$f"); done
"$release/examples/cold_init" --runs=61 "${binaries[@]}"

echo "-- billing reader, 1,000,000 rows (reference: Python csv on the same file)"
rows=1000000
file=$(mktemp --suffix=.csv)
trap 'rm -f "$file"' EXIT
"$release/examples/import_bench" "--generate=$file:$rows"
"$release/examples/import_bench" "--parse-file=$file:$rows"
.venv/bin/python infra/bench/csv_baseline.py "$file" "$rows"
# moto.sh's exit trap (below) replaces this one.
rm -f "$file"

echo "-- argon2id m=19456 t=2 p=1 (reference: libargon2 through argon2-cffi)"
"$release/examples/import_bench" --argon2
.venv/bin/python infra/bench/argon2_baseline.py

echo "-- AWS requests and sequential rounds per resident request (goals: register ≤ 3 + letter,"
echo "   confirm ≤ 2 + queue, login ≤ 3, account page ≤ 2), counted through moto's server"
source infra/moto.sh
start_moto
cargo test --quiet -p e2e --test round_trips -- --nocapture 2>&1 | grep -E "requests in"

if [[ "${BENCH_SKIP_IMPORT:-}" != 1 ]]; then
  echo "-- reader by size and the whole import against moto"
  "$release/examples/import_bench" "--import-rows=${IMPORT_ROWS:-100000}"
fi
