#!/usr/bin/env bash
# Installs what running and testing need, into the repository (idempotent):
# a Python venv in .venv with moto's server, cfn-lint and schemathesis.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv/.requirements
if [ ! -f "$stamp" ] || ! cmp -s infra/requirements.txt "$stamp"; then
  echo "==> Installing moto[server] and cfn-lint into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r infra/requirements.txt
  cp infra/requirements.txt "$stamp"
fi
