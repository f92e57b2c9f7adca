# The one command surface for people, hooks and CI. `make setup` is idempotent and every target
# that needs it runs it first, so `make test` works on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(CURDIR)/.tools/bin:$(PATH)
UV ?= uv
PYTEST_ARGS ?=


.PHONY: help setup run token test lint typecheck fmt check openapi charts cluster-test images bench loadtest bench-http clean

# `make token`: a customer's bearer token from the development issuer (.data/dev-issuer).
# USER is also the shell's login name: only a USER given on make's command line counts.
ACCOUNT ?= contoso
TOKEN_USER := $(if $(filter command line,$(origin USER)),$(USER),myowner)

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

setup: ## Install uv, the workspace, redis-server, chromium, FerretDB, Helm, Mailpit, web assets (idempotent)
	@bash scripts/setup.sh

assets: ## The web app's browser assets from npm, pinned by services/webapp/package-lock.json
	$(UV) run --all-packages --locked python scripts/assets.py

run: setup ## The whole system on this machine, bearer tokens on (AUTH=off: without); Ctrl-C stops it
	$(UV) run --all-packages --locked python scripts/run_stack.py $(if $(filter off,$(AUTH)),--auth off) $(RUN_ARGS)

token: ## Print a customer's token (ACCOUNT=contoso USER=myowner; ROLE=Operator; SERVICE=, AUD=)
	@$(UV) run --all-packages --locked --quiet python scripts/dev_issuer.py token --account '$(ACCOUNT)' --user '$(TOKEN_USER)' $(if $(ROLE),--role '$(ROLE)') $(if $(AUD),--aud '$(AUD)') $(if $(SERVICE),--service '$(SERVICE)')

test: setup ## Run the whole test suite against real Redis and FerretDB
	$(UV) run --all-packages --locked pytest $(PYTEST_ARGS)

lint: setup ## ruff (lint + format check), deptry (each member declares what it imports)
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .
	UV=$(UV) bash scripts/deptry.sh

typecheck: setup ## mypy --strict over every package and its tests
	$(UV) run --locked mypy libs services tests

fmt: ## Format and autofix
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

openapi: setup ## Rewrite every service's committed openapi.json from the code
	$(UV) run --locked python scripts/openapi.py

charts: setup ## Lint, render (reports/charts) and validate every chart with every values file
	bash scripts/charts.sh

cluster-test: setup ## Install, upgrade and roll back every chart on a local API server (kwok nodes); first run builds it (~15 min)
	UV=$(UV) bash scripts/cluster/test.sh $(CLUSTER_ARGS)

images: setup ## Build every service image on a local dockerd and smoke-test it (root, Debian)
	bash scripts/images.sh

.PHONY: compose-test
compose-test: setup ## The Redis Streams compose stack for real on a local dockerd, end to end (root, Debian, Go)
	UV=$(UV) bash scripts/compose_test.sh

check: lint typecheck test charts ## Everything CI runs

bench: setup ## The knee, overload, tracing cost on the native stack (~24 min; BENCH_ARGS=--growth: +13, --quick: ~3): reports/bench/report.md
	$(UV) run --all-packages --locked python scripts/bench.py $(BENCH_ARGS)

loadtest: setup ## Locust scenarios headless, 60 s (native stack unless LOADTEST_HOST): reports/loadtest/
	UV=$(UV) bash scripts/loadtest.sh $(LOADTEST_ARGS)

bench-http: setup ## Outbound HTTP client throughput at 20 concurrent calls
	$(UV) run --locked python libs/dronecommon/benchmarks/bench_http_client.py --concurrency 20 --seconds 10

clean: ## Remove caches and local data (keeps .tools)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .data reports
