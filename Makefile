# Developer entry points. `make local` runs the service end to end on this machine,
# `make test` runs unit and integration tests against the local emulator.
SHELL := bash
.DEFAULT_GOAL := help

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

emulator: ## install the local AWS emulator into ./.venv
	scripts/emulator.sh install

test: emulator ## unit + integration tests (starts its own emulator)
	cargo test --workspace --no-fail-fast

.PHONY: help emulator test

worker-image: ## build the on-premises copy worker image (tag: $WORKER_IMAGE)
	docker build -f worker/Dockerfile -t $${WORKER_IMAGE:-restore-worker:latest} .
.PHONY: worker-image
