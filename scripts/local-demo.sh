#!/usr/bin/env bash
# `make local`: builds restore-local, then runs scripts/local_demo.py against a private emulator
# (started and stopped by scripts/emulator.sh run). See local_demo.py for the steps.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/emulator.sh install
cargo build --quiet -p restore-local
target=${CARGO_TARGET_DIR:-$root/target}
export RESTORE_LOCAL="$target/debug/restore-local"
exec scripts/emulator.sh run -- "$root/.venv/bin/python" scripts/local_demo.py
