# Two entry points, both self-installing on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin
# The oldest Prefect we claim (pyproject.toml: prefect>=3.8.8); `make test-oldest` runs a fast subset on it.
OLDEST_PREFECT = 3.8.8
OLDEST_VENV = .venv-prefect-$(OLDEST_PREFECT)
OLDEST_SUBSET = tests/planning tests/blocks tests/flows \
	tests/hardening/test_interrupts.py::test_kill_9_leaves_no_temporary_prefect_server_behind

# Debian's Chromium for the browser test (tests/deployments/test_ui.py), which skips, saying why, if it is missing.
CHROMIUM = /usr/bin/chromium
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-oldest lint installs

# The plugin and the sandbox (its own distribution, in sandbox/) in one pip call, so that the plugin's
# `sandbox` extra resolves to this checkout's sandbox.
$(BIN)/.installed: pyproject.toml sandbox/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./sandbox -e '.[dev]'
	touch $@

$(OLDEST_VENV)/bin/.installed: pyproject.toml sandbox/pyproject.toml
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/pip install --quiet -e ./sandbox -e '.[dev]' 'prefect==$(OLDEST_PREFECT)'
	touch $@

$(CHROMIUM):
	$(SUDO) apt-get install -y -q --no-install-recommends chromium >/dev/null \
		|| ($(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q --no-install-recommends chromium >/dev/null) \
		|| echo "Chromium could not be installed: the browser test will be skipped"

# Everything both test commands need, installed side by side (make -j3 installs).
installs: $(BIN)/.installed $(OLDEST_VENV)/bin/.installed node_modules/.installed $(CHROMIUM)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(BIN)/.installed
	NO_PROXY=127.0.0.1,localhost $(BIN)/prefect-encord ingest

test: $(BIN)/.installed node_modules/.installed $(CHROMIUM)
	NO_PROXY=127.0.0.1,localhost $(BIN)/pytest

test-oldest: $(OLDEST_VENV)/bin/.installed node_modules/.installed
	NO_PROXY=127.0.0.1,localhost $(OLDEST_VENV)/bin/pytest $(OLDEST_SUBSET)

lint: $(BIN)/.installed
	$(BIN)/ruff check prefect_encord sandbox tests benchmarks
	$(BIN)/ruff format --check prefect_encord sandbox tests benchmarks
	$(BIN)/mypy prefect_encord sandbox/encord_sandbox
