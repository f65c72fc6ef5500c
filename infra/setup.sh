#!/usr/bin/env bash
# Installs what running and testing need, into the repository (idempotent):
# a Python venv in .venv with moto's server, cfn-lint (with the serverless
# rules), aws-sam-cli and schemathesis,
# and axe-core (npm) for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Rust toolchain of rust-toolchain.toml. Where the installed stable is
# that very version (this workplace has no other and cannot fetch one),
# rustup is shown it under the pinned name; elsewhere rustup installs it.
pinned="$(sed -n 's/^channel = "\(.*\)"$/\1/p' rust-toolchain.toml)"
host="$(RUSTUP_TOOLCHAIN=stable rustc -vV | sed -n 's/^host: //p')"
toolchains="${RUSTUP_HOME:-$HOME/.rustup}/toolchains"
if [ ! -e "$toolchains/$pinned-$host" ]; then
  if [ "$(RUSTUP_TOOLCHAIN=stable rustc --version | cut -d' ' -f2)" = "$pinned" ]; then
    echo "==> Rust $pinned is the installed stable: linking it under its version"
    ln -s "$toolchains/stable-$host" "$toolchains/$pinned-$host"
  else
    rustup toolchain install "$pinned" --profile minimal --component rustfmt --component clippy
  fi
fi

stamp=.venv/.requirements
if [ ! -f "$stamp" ] || ! cmp -s infra/requirements.txt "$stamp"; then
  echo "==> Installing moto[server], cfn-lint, aws-sam-cli and schemathesis into .venv"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r infra/requirements.txt
  cp infra/requirements.txt "$stamp"
fi

# axe-core for the accessibility checks of the browser tests, pinned by
# tests/axe/package-lock.json, with the machine's Node.js and npm (only the
# browser tests need it, so running the cabinet locally does not).
axe=tests/axe
if [ ! -f "$axe/node_modules/.lock-installed" ] || ! cmp -s "$axe/package-lock.json" "$axe/node_modules/.lock-installed"; then
  if command -v npm >/dev/null; then
    echo "==> Installing axe-core into $axe/node_modules (npm ci)"
    (cd "$axe" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    cp "$axe/package-lock.json" "$axe/node_modules/.lock-installed"
  else
    echo "==> npm not found: the browser tests need it for axe-core (install Node.js and npm)" >&2
  fi
fi
