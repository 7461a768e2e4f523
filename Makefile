# sanwu — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3.11
# Commands run here are local runs (the built-in petitioner-hash secret is accepted only then);
# the test suite sets its own environment (test).
export SANWU_ENVIRONMENT ?= local
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help deps venv up down status migrate demo run test test-fast test-faults test-faults-long lint format clean bench bench-quick

help:
	@echo "make run        start everything (stack, migrations, demo data, three services)"
	@echo "make test       run the whole suite against the real PostgreSQL and Kafka"
	@echo "make up / down  start / stop the local PostgreSQL and Kafka"
	@echo "make lint       ruff and mypy"

deps:
	@deploy/install-system.sh

$(BIN)/sanwu: pyproject.toml uv.lock
	@$(MAKE) --no-print-directory deps
	uv sync --frozen --quiet
	@touch $@

venv: $(BIN)/sanwu

up: venv
	@deploy/stack.sh up
	@$(BIN)/sanwu db migrate
	@$(BIN)/sanwu topics ensure

down:
	@deploy/stack.sh down

status:
	@deploy/stack.sh status

demo: up
	@$(BIN)/sanwu units load data/demo-units.csv

run: demo
	@deploy/run.sh

test: venv
	@deploy/stack.sh up
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: venv
	@deploy/stack.sh up
	$(BIN)/pytest -m "not faults" $(PYTEST_ARGS)

test-faults: venv
	@deploy/stack.sh up
	$(BIN)/pytest -m faults $(PYTEST_ARGS)

# The ledger test for five minutes instead of thirty seconds, and Kafka down for a minute; each
# test's timeout follows its load (tests/support/ledger.py timeout_for), not pyproject's 300 s.
test-faults-long: venv
	@deploy/stack.sh up
	SANWU_LEDGER_SECONDS=300 SANWU_KAFKA_OUTAGE_SECONDS=60 $(BIN)/pytest -m faults $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: down
	rm -rf .stack

bench: venv
	@deploy/stack.sh up
	$(BIN)/python -m bench run

bench-quick: venv
	@deploy/stack.sh up
	$(BIN)/python -m bench run --quick
