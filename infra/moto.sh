#!/usr/bin/env bash
# Sourced by run-local.sh, test.sh and bench.sh: starts moto's server on a
# free loopback port, exports AWS_ENDPOINT_URL and stops the server on exit;
# start_chromedriver does the same for the browser tests (WEBDRIVER_URL).

# Processes to stop when the calling script exits.
STOP_PIDS=()
stop_on_exit() {
  STOP_PIDS+=("$1")
  trap 'kill "${STOP_PIDS[@]}" 2>/dev/null || true' EXIT
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_moto() {
  local port="${MOTO_PORT:-$(free_port)}"
  # run-local.sh fixes the port (5000) so that upload-billing.sh finds it.
  local log="${MOTO_LOG:-.local/moto.log}"
  mkdir -p "$(dirname "$log")"
  # moto's server with atomic DynamoDB requests (see infra/moto_server.py).
  .venv/bin/python infra/moto_server.py -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  stop_on_exit $!
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  wait_until_up "moto's server" "$AWS_ENDPOINT_URL/_letters" "$log"
}

# wait_until_up NAME URL LOG: waits up to 20 s for URL to answer.
wait_until_up() {
  for _ in $(seq 1 100); do
    if python3 -c "import urllib.request; urllib.request.urlopen('$2', timeout=1)" 2>/dev/null; then
      echo "==> $1 is up ($2)"
      return 0
    fi
    sleep 0.2
  done
  echo "$1 did not start; see $3" >&2
  cat "$3" >&2
  return 1
}

# Debian's chromium and chromium-driver, installed when missing.
install_chromium() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    return 0
  fi
  echo "==> Installing chromium and chromium-driver (Debian packages)"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
}

start_chromedriver() {
  local port
  port="$(free_port)"
  mkdir -p .local
  chromedriver --port="$port" --allowed-ips=127.0.0.1 >.local/chromedriver.log 2>&1 &
  stop_on_exit $!
  export WEBDRIVER_URL="http://127.0.0.1:$port"
  wait_until_up chromedriver "$WEBDRIVER_URL/status" .local/chromedriver.log
}
