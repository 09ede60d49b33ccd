# Quick start: `make run` (local stack + Functions host) and `make test` (everything the tests need).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := local/node_modules/.installed

.PHONY: lock install install-python browser local-up local-down lint typecheck check test test-unit fuzz run demo bench clean

$(PY_STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

# requirements.txt (what the Functions deployment installs) and requirements-dev.txt, compiled
# from the direct dependencies in requirements.in and requirements-dev.in: every transitive
# pin, with hashes. Run after changing a .in file.
LOCK := CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links
lock: $(PY_STAMP)
	$(LOCK) --output-file requirements.txt requirements.in
	$(LOCK) --output-file requirements-dev.txt requirements-dev.in

$(NODE_STAMP): local/package.json local/package-lock.json $(wildcard local/patches/*.patch)
	cd local && npm ci --no-audit --no-fund --loglevel=error
	cd local && npx --no-install patch-package
	touch $@

install: $(PY_STAMP) $(NODE_STAMP)

install-python: $(PY_STAMP)

local-up: install
	$(PY) local/stack.py up
	$(PY) -m shared.cli local-env --format settings > local.settings.json
	set -a && eval "$$($(PY) -m shared.cli local-env --format env)" && $(PY) -m shared.cli bootstrap

local-down:
	$(PYTHON) local/stack.py down

lint: $(PY_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(PY_STAMP)
	$(VENV)/bin/mypy function_app.py shared tests bench local/stack.py local/functions_host.py local/demo.py local/scripted_user.py examples/partner.py local/keyvault_standin.py local/oidc_simulator.py local/withings_simulator.py infra/scripts/write_local_settings.py

# Every test, unit and integration, with the coverage of shared/ (its total is printed last).
check: lint typecheck
	$(VENV)/bin/pytest --cov=shared --cov-report=term:skip-covered tests

# Unit tests: nothing but Python (no Node, no local stack), in seconds.
test-unit: install-python
	$(VENV)/bin/pytest tests/unit

# Starts the local stack if it is not running, runs every check, and stops the stack again
# (even on failure) unless it was already running before.
# Debian's Chromium, for the browser tests (Playwright drives /usr/bin/chromium; it downloads no
# browser of its own). Installed with apt-get when missing and running as root (CI does).
CHROMIUM := /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "the browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; \
	  fi; \
	fi

test: install browser
	@was_running=0; $(PY) local/stack.py running && was_running=1; \
	status=0; $(MAKE) --no-print-directory local-up || status=$$?; \
	if [ $$status = 0 ]; then $(MAKE) --no-print-directory check || status=$$?; fi; \
	if [ $$was_running = 0 ]; then $(PY) local/stack.py down; fi; \
	exit $$status

# The fuzz and fault suites at full strength: many more generated cases per operation, and
# FHIR failing 90 % of calls as well as 30 %.
fuzz: local-up
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-1000} FAULT_RATES=0.3,0.9 $(VENV)/bin/pytest tests/integration/test_fuzz.py tests/integration/test_faults.py

# FUNCTIONS_HOST=project uses the project's own host even where Core Tools (func) is installed.
run: local-up
	@if [ "$(FUNCTIONS_HOST)" != "project" ] && command -v func >/dev/null 2>&1; then \
		func start; \
	else \
		$(PY) local/functions_host.py; \
	fi

# A tour of the running hub (`make run` in another terminal; started for the tour if absent).
demo: local-up
	$(PY) local/demo.py

bench: install
	$(PY) bench/convert.py
	$(PY) bench/cli.py
	$(MAKE) --no-print-directory local-up
	$(PY) bench/notify.py
	$(PY) bench/pipeline.py

clean: local-down
	rm -rf $(VENV) local/node_modules local/.data local.settings.json
