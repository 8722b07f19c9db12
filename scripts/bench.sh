#!/usr/bin/env bash
# `make bench`: install what the benchmarks need (rclone and s3cmd from Debian, moto in
# ./.venv), build the harness and every measured binary once in release, run each section
# (`restore-bench <section>`, each against a private moto server) and put the fragments
# together into bench/results.md, which is printed at the end.
#   BENCH_SECTIONS  sections to run (default: all): fanout tally sweep coldstart size copy
#   BENCH_RUNS      runs per figure, the median is reported (default 3)
#   more knobs per section: see bench/README.md
# Fragments of sections not run this time stay from their last run and say when they ran
# (bench/out/<section>.md is tracked in git for that).
set -euo pipefail
cd "$(dirname "$0")/.."

all_sections="fanout tally sweep coldstart size copy"
sections=${BENCH_SECTIONS-$all_sections}  # set but empty: only put the results together
for s in $sections; do
  case " $all_sections " in *" $s "*) ;; *) echo "bench: no section '$s' (one of: $all_sections)" >&2; exit 2 ;; esac
done
export BENCH_OUT="$PWD/bench/out"
mkdir -p "$BENCH_OUT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
# Our functions log JSON to stdout; the bench wants only its tables there.
export RUST_LOG=${RUST_LOG:-error}

missing=""
for tool in rclone s3cmd; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
if [ -n "$missing" ]; then
  echo "bench: installing$missing from Debian" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
scripts/emulator.sh install >/dev/null

functions="restore-api restore-fanout restore-events restore-finalizer restore-sweeper"
# Build only what the chosen sections run: the harness always, the worker for `copy`, the
# functions for `coldstart` and `size` (each a fat-LTO release link, minutes on 2 cores).
packages="-p restore-bench"
case " $sections " in *" copy "*) packages="$packages -p restore-worker" ;; esac
case " $sections " in
  *" coldstart "*|*" size "*) for f in $functions; do packages="$packages -p $f"; done ;;
esac
echo "bench: building in release:${packages//-p /}" >&2
# shellcheck disable=SC2086 # word splitting of the package list is intended
cargo build --quiet --release $packages
bin="$CARGO_TARGET_DIR/release"

stamp() { date -u '+%Y-%m-%d %H:%M UTC'; }
# Named in every fragment: sections kept from earlier runs may come from another machine.
BENCH_MACHINE="$(nproc) cores, $(sed -n 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n1), $(free -g | awk '/^Mem:/{print $2}') GiB RAM"
export BENCH_MACHINE

size_section() {
  local out="$BENCH_OUT/size.md" how zips="$BENCH_OUT/zips"
  if [ -x .venv/bin/cargo-lambda ] && [ "${BENCH_SIZE_ARM64:-1}" != 0 ]; then
    make --no-print-directory build >&2
    how="\`make build\` (cargo lambda, arm64, release profile): \`target/lambda/<function>/bootstrap.zip\`."
    zips="$CARGO_TARGET_DIR/lambda"
  else
    local why="cargo-lambda is not installed (\`scripts/tools.sh lambda\` installs it)"
    [ -x .venv/bin/cargo-lambda ] && why="\`BENCH_SIZE_ARM64=0\` skipped \`make build\`"
    how="$why, so these are the \
native x86_64 release binaries of this machine, zipped as \`bootstrap\` the way cargo lambda does \
(deflate), built in the same cargo invocation as the harness; the arm64 zips of \`make build\` \
come out close (README, \"Zip sizes\")."
    for f in $functions; do
      mkdir -p "$zips/$f"
      "$PWD/.venv/bin/python" - "$bin/$f" "$zips/$f/bootstrap.zip" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    info = zipfile.ZipInfo("bootstrap")
    info.external_attr = 0o755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, open(sys.argv[1], "rb").read())
PY
    done
  fi
  {
    echo "## Release zip sizes"
    echo
    echo "_Measured $(stamp) on $BENCH_MACHINE._ $how Target: ≤ 10 MB per zip."
    echo
    echo "| Function | zip | unzipped binary | ≤ 10 MB |"
    echo "| --- | --- | --- | --- |"
    "$PWD/.venv/bin/python" - "$zips" $functions <<'PY'
import os, sys, zipfile
root, functions = sys.argv[1], sys.argv[2:]
for f in functions:
    path = os.path.join(root, f, "bootstrap.zip")
    z = os.path.getsize(path)
    b = sum(i.file_size for i in zipfile.ZipFile(path).infolist())
    ok = "yes" if z <= 10_000_000 else "NO"
    print(f"| `{f}` | {z / 2**20:.2f} MiB ({z:,} B) | {b / 2**20:.2f} MiB | {ok} |")
PY
  } >"$out"
  cat "$out"
}

for s in $sections; do
  echo "bench: section $s ($(stamp))" >&2
  rm -f "$BENCH_OUT/$s.md"
  if [ "$s" = size ]; then
    size_section
  else
    scripts/emulator.sh run -- "$bin/restore-bench" "$s"
  fi
done

results=bench/results.md
{
  echo "# Benchmark results"
  echo
  echo "Written by \`make bench\` on $(stamp); machine: $BENCH_MACHINE, $(uname -srm)."
  echo "Sections run this time: ${sections:-none (fragments put together only)}. Each section says when and on what machine it was"
  echo "measured: compare figures within a section, not across sections of different machines."
  echo
  for s in $all_sections; do
    if [ -f "$BENCH_OUT/$s.md" ]; then cat "$BENCH_OUT/$s.md"; echo; else echo "## $s"; echo; echo "_Not measured yet._"; echo; fi
  done
} >"$results"
cat "$results"
echo "bench: wrote $results" >&2
