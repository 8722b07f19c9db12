#!/usr/bin/env bash
# `make bench`: build the harness in release, run each section, and put the fragments together
# into bench/results.md (printed at the end). BENCH_SECTIONS picks sections (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."

all_sections="fanout tally coldstart size copy"
sections=${BENCH_SECTIONS:-$all_sections}
export BENCH_OUT="$PWD/bench/out"
mkdir -p "$BENCH_OUT"

scripts/emulator.sh install >/dev/null
for s in $sections; do
  script="bench/sections/$s.sh"
  if [ ! -x "$script" ]; then echo "bench: no section '$s' ($script missing)" >&2; exit 2; fi
  echo "bench: section $s" >&2
  "$script"
done

results=bench/results.md
{
  echo "# Benchmark results"
  echo
  echo "Measured by \`make bench\` on $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores,"
  echo "$(sed -n 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n1), $(uname -srm)."
  echo
  for s in $all_sections; do
    if [ -f "$BENCH_OUT/$s.md" ]; then cat "$BENCH_OUT/$s.md"; echo; fi
  done
} >"$results"
cat "$results"
echo "bench: wrote $results" >&2
