# sigwatch developer front door. `make` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test lint fmt typecheck docs bench lock clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

install: $(STAMP) ## create .venv with the pinned dependencies (quick when nothing changed)

run: install ## start sigwatch with its offline demo on http://127.0.0.1:8000
	$(BIN)/sigwatch up --demo --host 127.0.0.1 --port 8000

test: install lint typecheck ## lint, type-check and run the whole test suite
	@if [ "$$CI" = "true" ]; then \
	  export SIGWATCH_TEST_DATABASE_URL=$${SIGWATCH_TEST_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/test}; \
	  export SIGWATCH_TEST_REDIS_URL=$${SIGWATCH_TEST_REDIS_URL:-redis://127.0.0.1:6379/15}; \
	fi; $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install ## ruff, and the import contracts of pyproject.toml (lint-imports)
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/ruff format --check src tests benchmarks docs
	$(BIN)/lint-imports --cache-dir $(VENV)/.import_linter_cache

fmt: install ## format and fix what ruff can
	$(BIN)/ruff format src tests benchmarks docs
	$(BIN)/ruff check --fix src tests benchmarks docs

typecheck: install ## mypy --strict on src/
	$(BIN)/mypy src

docs: install ## regenerate the settings table and CLI reference in docs/
	$(BIN)/python docs/generate.py

bench: install ## run the benchmarks (set SIGWATCH_TEST_DATABASE_URL to include PostgreSQL)
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/eval_detection.py
	$(BIN)/python benchmarks/bench_detect.py
	$(BIN)/python benchmarks/bench_poll.py
	$(BIN)/python benchmarks/bench_deliver.py
	$(BIN)/python benchmarks/bench_live.py
	$(BIN)/python benchmarks/bench_latency.py
	$(BIN)/python benchmarks/bench_soak.py

lock: ## re-resolve requirements.lock from pyproject.toml
	uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
