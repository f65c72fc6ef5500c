#!/usr/bin/env bash
# Sourced by run-local.sh and test.sh: starts moto's server on a free
# loopback port, exports AWS_ENDPOINT_URL and stops the server on exit.

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_moto() {
  local port="${MOTO_PORT:-$(free_port)}"
  # run-local.sh fixes the port (5000) so that upload-billing.sh finds it.
  local log="${MOTO_LOG:-.local/moto.log}"
  mkdir -p "$(dirname "$log")"
  .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request, sys; urllib.request.urlopen('$AWS_ENDPOINT_URL/moto-api/data.json', timeout=1)" 2>/dev/null; then
      echo "==> moto's server is up at $AWS_ENDPOINT_URL"
      return 0
    fi
    sleep 0.2
  done
  echo "moto's server did not start; see $log" >&2
  cat "$log" >&2
  return 1
}
