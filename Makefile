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

.PHONY: help deps venv up down status migrate demo run test test-fast test-faults test-faults-long test-cluster lint format clean bench bench-quick bench-compare

help:
	@echo "make run        start everything (stack, migrations, demo data, the services, the console)"
	@echo "make test       run the whole suite against the real PostgreSQL and Kafka"
	@echo "make up / down  start / stop the local PostgreSQL and Kafka"
	@echo "make test-cluster  the ledger test on a three-node Kafka cluster of its own"
	@echo "make lint       ruff and mypy"

deps:
	@deploy/install-system.sh

$(BIN)/sanwu: pyproject.toml uv.lock
	@$(MAKE) --no-print-directory deps
	uv sync --frozen --quiet
	@touch $@

venv: $(BIN)/sanwu

# KAFKA_BROKERS=3 make up: a three-node Kafka cluster instead of the single broker (see
# deploy/stack.sh); `deploy/stack.sh kafka-env` says what its clients need.
up: venv
	@deploy/stack.sh up
	@$(BIN)/sanwu db migrate
	@eval "$$(deploy/stack.sh kafka-env)" && $(BIN)/sanwu topics ensure

down:
	@deploy/stack.sh down

status:
	@deploy/stack.sh status

demo: up
	@$(BIN)/sanwu units load data/demo-units.csv

run: demo
	@eval "$$(deploy/stack.sh kafka-env)" && deploy/run.sh

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

# The ledger test on a three-node Kafka cluster (topics at replication factor 3,
# min.insync.replicas 2) while nodes are killed: a stack of its own, stopped afterwards.
CLUSTER_STACK_DIR ?= $(CURDIR)/.stack-cluster
CLUSTER_ENV = SANWU_STACK_DIR=$(CLUSTER_STACK_DIR) SANWU_PG_PORT=57432 SANWU_KAFKA_PORT=61092 \
	SANWU_KAFKA_CONTROLLER_PORT=61093 SANWU_KAFKA_BROKERS=3
test-cluster: venv
	@export $(CLUSTER_ENV) && deploy/stack.sh up && eval "$$(deploy/stack.sh kafka-env)" && \
	  $(BIN)/pytest -m cluster tests/cluster $(PYTEST_ARGS); status=$$?; \
	  export $(CLUSTER_ENV) && deploy/stack.sh down; exit $$status

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

# make bench-compare A=<file or commit> [B=<file or commit>]: two runs side by side.
bench-compare: venv
	$(BIN)/python -m bench compare $(A) $(or $(B),bench/results/latest.json)

bench-quick: venv
	@deploy/stack.sh up
	$(BIN)/python -m bench run --quick
