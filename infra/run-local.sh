#!/usr/bin/env bash
# Runs the whole cabinet locally: moto's server as the AWS endpoint, the
# resources of template.yaml, the Lambda handlers on http://127.0.0.1:$PORT.
#   PORT (default 3000), IDENTIFY_DELAY_SECONDS (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
infra/setup.sh
source infra/moto.sh
MOTO_PORT="${MOTO_PORT:-5000}" start_moto
echo "==> upload billing files with: infra/upload-billing.sh FILE (AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL)"
export PORT="${PORT:-3000}" IDENTIFY_DELAY_SECONDS="${IDENTIFY_DELAY_SECONDS:-30}"
cargo run --quiet -p local-stack
