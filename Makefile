# Tandem developer commands. Every target prints what it does; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
GEN    := gen/.stamp
PROTO_FILES := $(shell find protos -name '*.proto' 2>/dev/null)
LOCAL_ENV := .data/local.env
ARGS ?=

.PHONY: help install protos run test lint bench bench-compare clean deps tools soak demo screenshot web web-deps web-api

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@echo "==> creating $(VENV) and installing dependencies (first run takes a minute)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install dependencies

$(GEN): $(STAMP) $(PROTO_FILES)
	@echo "==> generating gRPC code from protos/ into gen/"
	@$(PY) -m scripts.protos

protos: $(STAMP) ## (re)generate gRPC code into gen/ (git-ignored)
	@echo "==> generating gRPC code from protos/ into gen/"
	@$(PY) -m scripts.protos

run: $(GEN) ## start the whole platform on this machine (Ctrl-C stops it)
	@$(PY) -m scripts.run $(ARGS)

deps: $(GEN) ## make sure PostgreSQL and Redis answer (starting private ones) and write .data/local.env
	@$(PY) -m scripts.run --deps-only

# $(call apt_tool,COMMAND,DEBIAN PACKAGE,WHAT IT IS FOR,WHAT IS SKIPPED WITHOUT IT):
# install a system tool best-effort with apt when root, else say what will be skipped.
define apt_tool
command -v $(1) >/dev/null 2>&1 || { \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "==> installing $(1) for $(3) (Debian package $(2))"; \
		apt-get install -y -qq --no-install-recommends $(2) >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends $(2) >/dev/null 2>&1; } || \
		echo "    $(1) could not be installed: $(4) will be skipped"; \
	else echo "==> $(1) not found: $(4) will be skipped"; fi; }
endef

tools: ## best-effort system tools: promtool for the deploy checks, Chromium for tests/browser (tests skip without them)
	@$(call apt_tool,promtool,prometheus,the deploy checks,the Prometheus rule tests)
	@# Playwright drives the system's Chromium (its own browser download is not used).
	@test -n "$$TANDEM_CHROMIUM" || $(call apt_tool,chromium,chromium,the browser tests,the browser tests (tests/browser; or set TANDEM_CHROMIUM))

test: $(GEN) tools web-deps ## run the whole test suite against real PostgreSQL/Redis (private ones if none answer)
	@echo "==> making sure PostgreSQL and Redis answer"
	@$(PY) -m scripts.run --deps-only
	@echo "==> running the test suite"
	@set -a; source $(LOCAL_ENV); set +a; \
		TEST_DATABASE_URL=$$DATABASE_URL TEST_REDIS_URL=$$REDIS_URL $(BIN)/pytest $(ARGS)

lint: $(GEN) web-deps ## ruff, mypy (strict on our packages), the import contracts; tsc and eslint on the web client
	@echo "==> ruff"
	@$(BIN)/ruff check .
	@echo "==> mypy --strict"
	@$(BIN)/mypy
	@echo "==> import contracts (lint-imports, [tool.importlinter] in pyproject.toml)"
	@out=$$($(BIN)/lint-imports --no-cache 2>&1) || { echo "$$out"; exit 1; }; \
		echo "$$out" | grep -E "^Contracts:"
	@if [ -f $(WEB_DEPS) ]; then \
		echo "==> tsc --noEmit and eslint (web/)"; \
		cd web && npx --no-install tsc --noEmit && npx --no-install eslint . ; \
	else echo "==> npm not found: the web client's type check and lint are skipped"; fi

# The web client (web/): its npm packages, its build (committed under gateway/web/dist so
# that `make run` and `make test` need no Node) and its API types (from the gateway's own
# OpenAPI document). tests/web checks that the committed build and types match the sources.
WEB_DEPS := web/node_modules/.installed

$(WEB_DEPS): web/package.json web/package-lock.json
	@echo "==> installing the web client's npm packages (npm ci)"
	@cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $(WEB_DEPS)

web-deps: ## the web client's npm packages, when Node is present (make test and make lint use them)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) -s $(WEB_DEPS); \
	else echo "==> npm not found: the web client's checks will be skipped (the committed build is served)"; fi

web: $(GEN) ## rebuild the web client into gateway/web/dist (needs Node 20.19+; commit the result)
	@command -v npm >/dev/null 2>&1 || { echo "make web needs Node 20.19+ and npm"; exit 1; }
	@$(MAKE) -s $(WEB_DEPS)
	@echo "==> type-checking and linting web/"
	@cd web && npx --no-install tsc --noEmit && npx --no-install eslint .
	@echo "==> unit tests of web/ (vitest)"
	@cd web && npx --no-install vitest run --reporter=dot
	@echo "==> building web/ into gateway/web/dist"
	@cd web && npx --no-install vite build --logLevel warn
	@echo "==> done: commit gateway/web/dist with the sources"

web-api: $(GEN) ## regenerate web/src/api/openapi.json and schema.d.ts from the gateway's routes
	@command -v npm >/dev/null 2>&1 || { echo "make web-api needs Node 20.19+ and npm"; exit 1; }
	@$(MAKE) -s $(WEB_DEPS)
	@echo "==> writing the gateway's OpenAPI document to web/src/api/openapi.json"
	@$(PY) -m gateway.openapi_dump web/src/api/openapi.json
	@echo "==> generating web/src/api/schema.d.ts (openapi-typescript)"
	@cd web && npm run -s api-types

bench: $(GEN) ## benchmark table (BENCH_SECONDS=2 for a quick run; ARGS="--url URL" for a running platform)
	@$(PY) -m scripts.run --deps-only
	@set -a; source $(LOCAL_ENV); set +a; $(PY) -m bench $(ARGS)

soak: $(GEN) ## long mixed traffic, zero errors and flat memory (SOAK_MINUTES=10; ARGS="--minutes 1")
	@$(PY) -m scripts.run --deps-only
	@set -a; source $(LOCAL_ENV); set +a; $(PY) -m soak $(ARGS)

demo: $(GEN) ## seed people, a session, chat and code into a running `make run` (ARGS="--url URL")
	@$(PY) -m scripts.demo $(ARGS)

screenshot: $(GEN) tools ## retake the README's pictures (docs/screenshot-room.png, -review.png, -ai.png) in Chromium from the browser tests
	@$(PY) -m scripts.run --deps-only
	@echo "==> taking docs/screenshot-{room,review,ai}.png with tests/browser/test_screenshot.py"
	@rm -f .data/screenshot-room.png .data/screenshot-review.png .data/screenshot-ai.png
	@set -a; source $(LOCAL_ENV); set +a; \
		TEST_DATABASE_URL=$$DATABASE_URL TEST_REDIS_URL=$$REDIS_URL \
		TANDEM_SCREENSHOT_ROOM=$(CURDIR)/.data/screenshot-room.png \
		TANDEM_SCREENSHOT_REVIEW=$(CURDIR)/.data/screenshot-review.png \
		TANDEM_SCREENSHOT_AI=$(CURDIR)/.data/screenshot-ai.png \
		$(BIN)/pytest tests/browser/test_screenshot.py -q -p no:cacheprovider -rs $(ARGS)
	@for shot in room review ai; do \
		test -s .data/screenshot-$$shot.png || { echo "no screenshot-$$shot.png was taken (see the skip reason above)"; exit 1; }; \
	done
	@for shot in room review ai; do mv .data/screenshot-$$shot.png docs/screenshot-$$shot.png; done
	@echo "==> wrote docs/screenshot-room.png, docs/screenshot-review.png and docs/screenshot-ai.png"

bench-compare: $(STAMP) ## compare two bench results: make bench-compare A=<file|commit> B=<file|commit>
	@$(PY) -m bench.compare $(A) $(B)

clean: ## remove generated code and caches (keeps .venv and .data)
	rm -rf gen .mypy_cache .ruff_cache .pytest_cache
