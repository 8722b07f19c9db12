#!/usr/bin/env bash
# Build and deploy tools in project-local virtualenvs (nothing global, idempotent):
#   scripts/tools.sh lambda   cargo-lambda + ziglang into ./.venv (cross-builds arm64 zips)
#   scripts/tools.sh cargo-lambda  cargo-lambda alone into ./.venv (`cargo lambda watch` /
#                             `invoke`, as the sample-events test uses them)
#   scripts/tools.sh sam      aws-sam-cli + cfn-lint into ./.venv-sam (own venv: SAM pins an
#                             older boto3 than moto wants)
#   scripts/tools.sh schemathesis schemathesis into ./.venv-schemathesis (API vs openapi.yaml
#                             test; own venv so its pins never move moto's)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

ensure_venv() {
  [ -x "$1/bin/pip" ] || python3 -m venv "$1"
}

case "${1:-}" in
  lambda)
    ensure_venv "$root/.venv"
    if [ ! -x "$root/.venv/bin/cargo-lambda" ] || [ ! -x "$root/.venv/bin/python-zig" ]; then
      echo "tools: installing cargo-lambda and ziglang into .venv" >&2
      "$root/.venv/bin/pip" install --quiet --disable-pip-version-check cargo-lambda ziglang
    fi
    rustup target list --installed | grep -q '^aarch64-unknown-linux-gnu$' \
      || rustup target add aarch64-unknown-linux-gnu
    ;;
  cargo-lambda)
    ensure_venv "$root/.venv"
    if [ ! -x "$root/.venv/bin/cargo-lambda" ]; then
      echo "tools: installing cargo-lambda into .venv" >&2
      "$root/.venv/bin/pip" install --quiet --disable-pip-version-check cargo-lambda
    fi
    ;;
  sam)
    ensure_venv "$root/.venv-sam"
    if [ ! -x "$root/.venv-sam/bin/sam" ] || [ ! -x "$root/.venv-sam/bin/cfn-lint" ]; then
      echo "tools: installing aws-sam-cli and cfn-lint into .venv-sam" >&2
      "$root/.venv-sam/bin/pip" install --quiet --disable-pip-version-check aws-sam-cli cfn-lint
    fi
    ;;
  schemathesis)
    ensure_venv "$root/.venv-schemathesis"
    if [ ! -x "$root/.venv-schemathesis/bin/schemathesis" ]; then
      echo "tools: installing schemathesis into .venv-schemathesis" >&2
      "$root/.venv-schemathesis/bin/pip" install --quiet --disable-pip-version-check \
        -r "$root/scripts/requirements-schemathesis.txt"
    fi
    ;;
  *) echo "usage: $0 lambda|cargo-lambda|sam|schemathesis" >&2; exit 2 ;;
esac
