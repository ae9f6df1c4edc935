VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.run-deps

## run: create the virtualenv, install, write a dev .env if none, migrate, serve on 127.0.0.1:5000
run: $(VENV)/.run-deps
	@$(BIN)/python scripts/dev_env.py
	$(BIN)/flask --app autocheckin db upgrade
	$(BIN)/python main.py

## test: lint, then the test suite (TEST_DATABASE_URL selects PostgreSQL)
test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

format: $(VENV)/.dev-deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: every benchmark against its ceiling, on SQLite, then PostgreSQL when one answers
BENCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/autocheckin_bench
BENCH_RESULTS := bench-results
bench: $(VENV)/.dev-deps
	mkdir -p $(BENCH_RESULTS)
	$(BIN)/python bench/refresh.py --json $(BENCH_RESULTS)/refresh.json
	$(BIN)/python bench/ingest.py --json $(BENCH_RESULTS)/ingest-sqlite.json
	$(BIN)/python bench/ingest.py --database-url $(BENCH_DATABASE_URL) --json $(BENCH_RESULTS)/ingest-postgresql.json
	$(BIN)/python bench/export.py --json $(BENCH_RESULTS)/export-sqlite.json
	$(BIN)/python bench/export.py --database-url $(BENCH_DATABASE_URL) --json $(BENCH_RESULTS)/export-postgresql.json
	$(BIN)/python bench/audit.py --json $(BENCH_RESULTS)/audit-sqlite.json
	$(BIN)/python bench/audit.py --database-url $(BENCH_DATABASE_URL) --json $(BENCH_RESULTS)/audit-postgresql.json
	$(BIN)/python bench/findings.py --json $(BENCH_RESULTS)/findings-sqlite.json
	$(BIN)/python bench/findings.py --database-url $(BENCH_DATABASE_URL) --json $(BENCH_RESULTS)/findings-postgresql.json
	@echo; $(BIN)/python bench/summary.py $(BENCH_RESULTS)/*.json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache
