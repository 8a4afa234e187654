# Task API — every command a newcomer needs. Only python3 (3.11+) and make are assumed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
BIN := $(VENV)/bin

.PHONY: install run test lint format test-only browser openapi bench clean fuzz pgbouncer compose node test-pgbouncer \
	docker images test-containers

install: $(VENV)/.installed

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# The lock file pins every package; --frozen refuses to install anything it does not list.
# Bytecode is compiled once here: where PYTHONDONTWRITEBYTECODE is set, every `taskapi` process
# would otherwise compile its libraries again (4 s instead of 1 s to start, here).
$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --inexact --quiet --compile-bytecode
	touch $@

HOST ?= 127.0.0.1
PORT ?= 8000

run: install
	$(BIN)/taskapi dev --host $(HOST) --port $(PORT)

lint: install
	@echo "== lint: ruff, import-linter (the hexagon), mypy --strict =="
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint test-only test-pgbouncer test-containers

test-only: install browser pgbouncer compose node
	@echo "== tests: unit, integration, e2e (a heading where each starts) =="
	$(BIN)/pytest

# The e2e suite a second time, the API connecting through a real PgBouncer in transaction mode
# (like Neon's pooled endpoint); migrations and the tests' own reads stay on the direct URL.
test-pgbouncer: install pgbouncer
	@if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then \
		echo "make test-pgbouncer: pgbouncer is not installed (make pgbouncer needs root): pass skipped" >&2; \
		[ "$${TASKAPI_REQUIRE_ALL:-0}" != 1 ]; \
	else echo "== e2e through PgBouncer =="; \
		TEST_THROUGH_PGBOUNCER=1 $(BIN)/pytest tests/e2e -q -p no:cacheprovider; fi

# The container stage (containers/stage.sh): the production image, the compose stack, and the
# integration and e2e suites on a throwaway PostgreSQL container. Starts dockerd when root and it
# is installed but not running; without an engine it says so and is left out.
test-containers: install browser pgbouncer compose node docker
	containers/stage.sh

# Local stand-ins for the official images (containers/local.env), built from Debian's mirror for
# machines that reach no image registry; cached, rebuilt only when their recipe changes.
images: docker
	containers/build-images.sh

# Debian's Docker engine and debootstrap for the container stage, installed when missing and we
# are root with apt-get; otherwise that stage says why it is left out.
docker:
	@missing=""; \
	if ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null; then missing="docker.io"; fi; \
	if ! PATH="$$PATH:/usr/sbin:/sbin" command -v debootstrap >/dev/null; then missing="$$missing debootstrap"; fi; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "make docker: installing Debian's$$missing"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
			|| echo "make docker: could not install$$missing; the container stage may be left out" >&2; \
	fi

# Debian's Chromium for tests/e2e/test_cors_browser.py, installed when missing and we are root with
# apt-get; otherwise (or offline) that test skips itself. No browser is downloaded from elsewhere.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "make browser: installing Debian's chromium"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
			|| echo "make browser: could not install chromium; the browser test will skip" >&2; \
	fi

# Debian's PgBouncer (1.18) for the transaction-pooling tests (tests/pgbouncer.py), installed when
# missing and we are root with apt-get; otherwise those tests skip themselves and say why.
pgbouncer:
	@if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ] && [ "$$(id -u)" = 0 ] \
		&& command -v apt-get >/dev/null; then \
		echo "make pgbouncer: installing Debian's pgbouncer"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer) \
			|| echo "make pgbouncer: could not install pgbouncer; the PgBouncer tests will skip" >&2; \
	fi

# A compose CLI for tests/integration/test_deployment_files.py (it validates docker-compose.yml;
# no engine is needed): Debian's docker-compose, installed when missing and we are root with
# apt-get; otherwise those tests skip themselves and say why.
compose:
	@if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null \
		&& [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "make compose: installing Debian's docker-compose"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) \
			|| echo "make compose: could not install docker-compose; the compose tests will skip" >&2; \
	fi

# Debian's Node.js and npm for tests/e2e/test_typed_client.py (it installs the pinned
# tests/typed_client/package-lock.json with `npm ci`), installed when missing and we are root with
# apt-get; otherwise that test skips itself and says why.
node:
	@if { ! command -v node >/dev/null || ! command -v npm >/dev/null; } && [ "$$(id -u)" = 0 ] \
		&& command -v apt-get >/dev/null; then \
		echo "make node: installing Debian's nodejs and npm"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm) \
			|| echo "make node: could not install nodejs and npm; the typed-client test will skip" >&2; \
	fi

# The long schemathesis run against the served OpenAPI (make test runs 25 examples per case).
fuzz: install
	FUZZ_EXAMPLES=1000 $(BIN)/pytest tests/e2e/test_fuzz_openapi.py -q

# Load and latency on this machine (benchmarks/README.md); never part of `make test`.
bench: install
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	$(BIN)/python benchmarks/run.py

# The committed contract file the frontend generates its client from; a test fails on drift.
openapi: install
	$(BIN)/taskapi openapi > openapi.json

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .cache
