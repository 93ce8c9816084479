# The only entry points for humans and CI. `make run` and `make test` set everything up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000
# The vehicle data (EPA, NHTSA) loaded into the knowledge base before the API starts.
DATA_DIR ?= ../shared/data
export PIP_DISABLE_PIP_VERSION_CHECK := 1
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# pip on some machines prints one harmless line per ignored local mirror location.
QUIET_PIP := { grep -v "is ignored" || true; }

.PHONY: run test setup fmt lint typecheck layers test-unit test-int evals bench clean

$(STAMP): pyproject.toml constraints.txt setup.py tools/domain/_vehiclec.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]" 2>&1 | $(QUIET_PIP)
	touch $(STAMP)

setup: $(STAMP)

## Set up, then start the main job on the embedded defaults: the API and the web chat page,
## with the bulk-job worker beside it (stopped when the API stops). Migrating first keeps the
## two processes from racing to create the schema.
run: $(STAMP)
	$(BIN)/vinbot migrate
	if [ -d "$(DATA_DIR)" ]; then $(BIN)/vinbot ingest all --data-dir "$(DATA_DIR)"; \
	else echo "No $(DATA_DIR): spec, comparison and recall answers need 'vinbot ingest all' (downloads the publishers' files)."; fi
	$(BIN)/vinbot worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/vinbot api --host $(HOST) --port $(PORT)

## Set up, then run every check: format, lint, types, layering, all tests.
test: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -p no:cacheprovider

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

test-int: $(STAMP)
	$(BIN)/pytest -m integration

evals: $(STAMP)
	$(BIN)/vinbot eval agent
	$(BIN)/vinbot eval vin-accuracy

bench: $(STAMP)
	$(BIN)/python -m bench.decode_bench
	$(BIN)/python -m bench.ask_bench
	$(BIN)/python -m bench.bulk_bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
