#!/usr/bin/env bash
# Local AWS emulator (moto server) in a project-local virtualenv.
#   scripts/emulator.sh install   create ./.venv and install moto[server] (idempotent)
#   scripts/emulator.sh start     start moto_server on a free loopback port; prints the endpoint
#   scripts/emulator.sh stop      stop the server started by `start`
#   scripts/emulator.sh endpoint  print the running server's endpoint
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
run="$root/.run"
req="$root/scripts/requirements.txt"

install() {
  if [ -x "$venv/bin/moto_server" ] && cmp -s "$req" "$venv/.requirements"; then
    return 0
  fi
  echo "emulator: installing moto[server] into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/.requirements"
}

free_port() {
  "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
  install
  mkdir -p "$run"
  if [ -f "$run/moto.pid" ] && kill -0 "$(cat "$run/moto.pid")" 2>/dev/null; then
    cat "$run/moto.endpoint"; return 0
  fi
  port=${MOTO_PORT:-$(free_port)}
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$run/moto.log" 2>&1 &
  echo $! >"$run/moto.pid"
  echo "http://127.0.0.1:$port" >"$run/moto.endpoint"
  for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
      cat "$run/moto.endpoint"; return 0
    fi
    sleep 0.1
  done
  echo "emulator: moto_server did not start; see $run/moto.log" >&2
  exit 1
}

stop() {
  if [ -f "$run/moto.pid" ]; then
    kill "$(cat "$run/moto.pid")" 2>/dev/null || true
    rm -f "$run/moto.pid" "$run/moto.endpoint"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  endpoint) cat "$run/moto.endpoint" ;;
  *) echo "usage: $0 install|start|stop|endpoint" >&2; exit 2 ;;
esac
