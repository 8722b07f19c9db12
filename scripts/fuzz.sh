#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ for FUZZ_SECONDS (default 600) on the kept corpus in
# fuzz/corpus/<target>/, seeding an empty corpus from events/ and a few known inputs first.
# Needs a nightly toolchain and cargo-fuzz (installed here when missing). A crash leaves its
# input in fuzz/artifacts/<target>/ and fails the script. Usage: scripts/fuzz.sh [target...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-600}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request_parser path_mapping event_parser)

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz

seed() {
  local dir="$root/fuzz/corpus/$1"
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || return 0
  case "$1" in
    event_parser)
      for f in "$root"/events/s3-*.json "$root"/events/sqs-*.json "$root"/events/eventbridge-*.json; do
        cp "$f" "$dir/seed-$(basename "$f")"
      done
      printf 'proj/take+1%%2C+%%C3%%A9t%%C3%%A9.mov' >"$dir/seed-key" ;;
    request_parser)
      for f in "$root"/events/apigw-*.json; do
        python3 -c 'import json,sys; b=json.load(open(sys.argv[1])).get("body"); b and sys.stdout.write(b)' \
          "$f" >"$dir/seed-$(basename "$f")"
      done
      find "$dir" -empty -delete ;;
    path_mapping)
      printf '/srv/Assets/proj/' >"$dir/seed-assets"
      printf 'proj/sub dir/ü/' >"$dir/seed-plain"
      printf '/srv/Assets/../etc/' >"$dir/seed-dotdot" ;;
  esac
}

cd "$root/fuzz"
for target in "${targets[@]}"; do
  seed "$target"
  echo "fuzz: $target for ${seconds}s (corpus fuzz/corpus/$target: $(ls "corpus/$target" | wc -l) inputs)" >&2
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1
  cargo +nightly fuzz cmin "$target" "corpus/$target" >/dev/null 2>&1 || true
  echo "fuzz: $target done, corpus $(ls "corpus/$target" | wc -l) inputs after cmin" >&2
done
