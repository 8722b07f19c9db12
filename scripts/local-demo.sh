#!/usr/bin/env bash
# `make local`: builds restore-local, then runs scripts/local_demo.py against a private emulator
# (started and stopped by scripts/emulator.sh run): seed buckets, `restore-local serve`, submit a
# restore, follow it to completion, print the manifest and the mail. Stops by itself.
# CARGO_PROFILE picks the cargo profile (default dev).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/emulator.sh install
profile=${CARGO_PROFILE:-dev}
cargo build --quiet --profile "$profile" -p restore-local
dir=$profile
[ "$profile" = dev ] && dir=debug
export RESTORE_LOCAL="${CARGO_TARGET_DIR:-$root/target}/$dir/restore-local"
exec scripts/emulator.sh run -- "$root/.venv/bin/python" scripts/local_demo.py
