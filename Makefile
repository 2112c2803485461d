# Two entry points, both self-installing on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo test lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(BIN)/.installed
	NO_PROXY=127.0.0.1,localhost $(BIN)/prefect-encord ingest

test: $(BIN)/.installed node_modules/.installed
	NO_PROXY=127.0.0.1,localhost $(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check prefect_encord tests examples benchmarks
	$(BIN)/ruff format --check prefect_encord tests examples benchmarks
	$(BIN)/mypy prefect_encord
