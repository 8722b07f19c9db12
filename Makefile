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
	scripts/tools.sh schemathesis
	scripts/tools.sh cargo-lambda
	cargo test --workspace --exclude restore-bench --no-fail-fast

.PHONY: help emulator local demo test

FUNCTIONS := restore-api restore-fanout restore-events restore-finalizer restore-sweeper
VENV_BIN := $(CURDIR)/.venv/bin
SAM_BIN := $(CURDIR)/.venv-sam/bin

build: ## release zips of every Lambda (arm64, cargo-lambda) in target/lambda/<function>/
	scripts/tools.sh lambda
	PATH="$(VENV_BIN):$$PATH" cargo lambda build --release --arm64 --output-format zip \
		$(foreach f,$(FUNCTIONS),-p $(f))
	@for f in $(FUNCTIONS); do \
		z=$$(ls "$${CARGO_TARGET_DIR:-target}/lambda/$$f/bootstrap.zip"); \
		printf '%-20s %8d bytes\n' "$$f" "$$(stat -c %s "$$z")"; done

lint: ## cfn-lint + sam validate on template.yaml, rustfmt and clippy on the code
	scripts/tools.sh sam
	$(SAM_BIN)/cfn-lint template.yaml
	$(SAM_BIN)/sam validate --lint --template template.yaml
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

deploy: ## sam build + sam deploy (first time: make deploy GUIDED=1)
	scripts/tools.sh lambda
	scripts/tools.sh sam
	PATH="$(VENV_BIN):$$PATH" $(SAM_BIN)/sam build --beta-features
	$(SAM_BIN)/sam deploy $(if $(GUIDED),--guided,)

deploy-latest: deploy ## the seed's name for deploying the current main

bench: ## run the benchmarks (bench/sections/*.sh) and write bench/results.md
	scripts/bench.sh

fuzz: ## run each cargo-fuzz target FUZZ_SECONDS (default 600) on the kept corpus (nightly)
	scripts/fuzz.sh

.PHONY: build lint deploy deploy-latest bench fuzz

worker-image: ## build the on-premises copy worker image (tag: $WORKER_IMAGE)
	docker build -f worker/Dockerfile -t $${WORKER_IMAGE:-restore-worker:latest} .
.PHONY: worker-image
