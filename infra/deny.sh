#!/usr/bin/env bash
# cargo deny over the dependency tree (deny.toml): licenses, duplicate
# versions, sources. `--install` only installs cargo-deny (pinned, built from
# crates.io into .local/tools). `--advisories` also checks the RustSec
# advisories, from a database already at ~/.cargo/advisory-dbs: it lives on
# GitHub, which CI cannot reach, so CI runs without it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.20.2
tools=.local/tools
deny="$tools/bin/cargo-deny"
if [ ! -x "$deny" ] || [ "$("$deny" --version)" != "cargo-deny $version" ]; then
  echo "==> Installing cargo-deny $version into $tools"
  cargo install --quiet --locked --root "$tools" --version "$version" cargo-deny
fi
[ "${1:-}" = --install ] && exit 0
checks=(licenses bans sources)
[ "${1:-}" = --advisories ] && checks+=(advisories)
echo "==> cargo deny check ${checks[*]}"
# cargo deny reads the metadata of every platform's crates (windows-sys
# too), which a build for this machine never downloads; offline, it fails
# on a fresh machine unless they are fetched first (crates.io is reachable).
cargo fetch --locked --quiet
status=0
output="$("$deny" --offline check "${checks[@]}" 2>&1)" || status=$?
# Errors in full; duplicate versions (warnings) as one line of names.
grep -E '^error' -A12 <<<"$output" || true
duplicates="$(sed -n "s/^warning\[duplicate\]: found [0-9]* duplicate entries for crate '\(.*\)'/\1/p" <<<"$output" | tr '\n' ' ')"
echo "duplicate versions ($(wc -w <<<"$duplicates")): $duplicates"
grep -E '(ok|FAILED)(,|$)' <<<"$output" | grep -v '^\s' || true
exit "$status"
