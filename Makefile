# Developer entry points. `make local` runs the service on this machine against the local AWS
# emulator, `make test` runs unit and integration tests (each test file starts its own emulator).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Arguments of `restore-local demo`, e.g. `make demo DEMO_ARGS="--tier Expedited"`.
DEMO_ARGS ?=

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

emulator: ## install the local AWS emulator (moto) into ./.venv
	scripts/emulator.sh install

local: emulator ## the whole service locally: seed, serve, submit a restore, follow it, show manifest and mail, stop
	scripts/local-demo.sh

demo: emulator ## guided tour of listing, cost and restores through the S3 adapter, then stop
	cargo build --quiet -p restore-local
	RUST_LOG=$${RUST_LOG:-warn} scripts/emulator.sh run -- cargo run --quiet -p restore-local -- demo $(DEMO_ARGS)

test: emulator ## unit + integration tests against the emulator
	cargo test --workspace --no-fail-fast

.PHONY: help emulator local demo test

worker-image: ## build the on-premises copy worker image (tag: $WORKER_IMAGE)
	docker build -f worker/Dockerfile -t $${WORKER_IMAGE:-restore-worker:latest} .
.PHONY: worker-image
