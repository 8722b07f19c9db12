#!/usr/bin/env bash
# Local AWS emulator (moto server) in a project-local virtualenv. Nothing is installed globally.
#   scripts/emulator.sh install          create ./.venv with scripts/requirements.txt (idempotent:
#                                        reinstalls only when the requirements changed)
#   scripts/emulator.sh start            start moto_server on a free loopback port; prints the endpoint
#   scripts/emulator.sh stop             stop the server started by `start`
#   scripts/emulator.sh endpoint         print the running server's endpoint
#   scripts/emulator.sh run -- CMD...    start a private server, run CMD with AWS_ENDPOINT_URL
#                                        pointing at it, stop the server however CMD ends
# Environment: MOTO_PORT fixes the port (default: a free one); PYTHON picks the interpreter.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
run="$root/.run"
req="$root/scripts/requirements.txt"
python=${PYTHON:-python3}

install() {
  if [ -x "$venv/bin/moto_server" ] && cmp -s "$req" "$venv/.requirements"; then
    return 0
  fi
  command -v "$python" >/dev/null || { echo "emulator: $python not found; install Python 3.9+" >&2; exit 1; }
  echo "emulator: installing $(grep -v '^#' "$req" | xargs) into $venv" >&2
  if ! "$python" -m venv "$venv"; then
    rm -rf "$venv"
    echo "emulator: '$python -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2
    exit 1
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.requirements"
}

free_port() {
  "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_ready ENDPOINT PID: until moto answers, or fail if the process died or 30 s passed.
wait_ready() {
  for _ in $(seq 1 300); do
    if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('$1/moto-api/', timeout=1)" 2>/dev/null; then
      return 0
    fi
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

# launch DIR: start moto with pid/endpoint/log files in DIR; prints the endpoint.
launch() {
  local dir=$1 port
  mkdir -p "$dir"
  port=${MOTO_PORT:-$(free_port)}
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
  echo $! >"$dir/moto.pid"
  echo "http://127.0.0.1:$port" >"$dir/moto.endpoint"
  if ! wait_ready "http://127.0.0.1:$port" "$(cat "$dir/moto.pid")"; then
    echo "emulator: moto_server did not start; log:" >&2
    tail -n 20 "$dir/moto.log" >&2
    halt "$dir"
    exit 1
  fi
  cat "$dir/moto.endpoint"
}

# halt DIR: stop the server whose pid is in DIR and wait for it to exit.
halt() {
  local dir=$1 pid
  [ -f "$dir/moto.pid" ] || return 0
  pid=$(cat "$dir/moto.pid")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$dir/moto.pid" "$dir/moto.endpoint"
}

start() {
  install
  if [ -f "$run/moto.pid" ] && kill -0 "$(cat "$run/moto.pid")" 2>/dev/null; then
    cat "$run/moto.endpoint"
    return 0
  fi
  launch "$run"
}

run_with() {
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || { echo "usage: $0 run -- CMD..." >&2; exit 2; }
  install
  local endpoint status=0
  # Global: the EXIT trap runs after this function's locals are gone.
  private_dir=$(mktemp -d "${TMPDIR:-/tmp}/moto-run.XXXXXX")
  trap 'halt "$private_dir"; rm -rf "$private_dir"' EXIT
  trap 'exit 130' INT TERM
  endpoint=$(launch "$private_dir")
  echo "emulator: moto_server at $endpoint" >&2
  AWS_ENDPOINT_URL=$endpoint MOTO_ENDPOINT=$endpoint "$@" || status=$?
  return "$status"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) halt "$run" ;;
  endpoint) cat "$run/moto.endpoint" ;;
  run) shift; run_with "$@" ;;
  *) echo "usage: $0 install|start|stop|endpoint|run -- CMD..." >&2; exit 2 ;;
esac
