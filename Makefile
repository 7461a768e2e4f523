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

.PHONY: help deps venv up down status migrate demo run test test-fast test-faults test-faults-long test-clock test-cluster lint format clean bench bench-quick bench-compare

help:
	@echo "make run        start everything (stack, migrations, demo data, the services, the console)"
	@echo "make test       run the whole suite against the real PostgreSQL and Kafka (the fault"
	@echo "                tests on a stack of their own, .stack-faults, stopped afterwards)"
	@echo "make test-clock the suite with the clock at New Year's Eve 23:30 and on leap day"
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
# deploy/stack.sh); `deploy/stack.sh client-env` says what its clients need (the Kafka
# addresses, and PGPASSFILE: the stack's database passwords).
CLIENT_ENV = eval "$$(deploy/stack.sh client-env)"
up: venv
	@deploy/stack.sh up
	@$(CLIENT_ENV) && $(BIN)/sanwu db migrate && $(BIN)/sanwu topics ensure

down:
	@deploy/stack.sh down

status:
	@deploy/stack.sh status

demo: up
	@$(CLIENT_ENV) && $(BIN)/sanwu units load data/demo-units.csv && \
	  $(BIN)/sanwu bodies load data/demo-bodies.csv

run: demo
	@$(CLIENT_ENV) && deploy/run.sh

# The fault tests (marked `faults`: they kill and stop Kafka, PostgreSQL and processes) run on
# a stack of their own, never on the one a developer or `make run` uses: other ports, another
# directory, started here and stopped afterwards whatever the outcome.
FAULTS_STACK_DIR ?= $(CURDIR)/.stack-faults
FAULTS_ENV = SANWU_STACK_DIR=$(FAULTS_STACK_DIR) SANWU_PG_PORT=26432 SANWU_KAFKA_PORT=30092 \
	SANWU_KAFKA_CONTROLLER_PORT=30093 SANWU_KAFKA_BROKERS=1
# $(call on_fault_stack,COMMAND): the command with the fault stack up, which is then stopped
# (also on failure or Ctrl-C). Addresses of another stack the shell may carry are dropped.
on_fault_stack = ( unset SANWU_TEST_ADMIN_DSN SANWU_KAFKA_BOOTSTRAP_SERVERS \
	SANWU_KAFKA_REPLICATION_FACTOR SANWU_KAFKA_MIN_INSYNC_REPLICAS && export $(FAULTS_ENV) && \
	mkdir -p "$$SANWU_STACK_DIR" && echo '*' >"$$SANWU_STACK_DIR/.gitignore" && \
	trap 'deploy/stack.sh down' EXIT && deploy/stack.sh up && $(1) )

# The suite without the fault tests on the default stack, then the fault tests on their own;
# fails when either part does.
test: venv
	@deploy/stack.sh up
	@$(BIN)/pytest -m "not faults" $(PYTEST_ARGS); fast=$$?; \
	  $(call on_fault_stack,$(BIN)/pytest -m faults $(PYTEST_ARGS)); faults=$$?; \
	  echo "make test: without faults exit $$fast, faults exit $$faults"; \
	  [ $$fast = 0 ] && [ $$faults = 0 ]

test-fast: venv
	@deploy/stack.sh up
	$(BIN)/pytest -m "not faults" $(PYTEST_ARGS)

test-faults: venv
	@$(call on_fault_stack,$(BIN)/pytest -m faults $(PYTEST_ARGS))

# The ledger test for five minutes instead of thirty seconds, and Kafka down for a minute; each
# test's timeout follows its load (tests/support/ledger.py timeout_for), not pyproject's 300 s.
test-faults-long: venv
	@$(call on_fault_stack,SANWU_LEDGER_SECONDS=300 SANWU_KAFKA_OUTAGE_SECONDS=60 \
	  $(BIN)/pytest -m faults $(PYTEST_ARGS))

# The suites without the fault tests with every service's clock (SANWU_CLOCK_OFFSET_SECONDS,
# taken when each run starts) at two awkward moments, Shanghai time: New Year's Eve 23:30 and
# leap day noon. CLOCK_SUITES=tests/evaluation/test_rolling.py runs one file.
CLOCK_MOMENTS ?= $(shell date +%Y)-12-31T23:30:00+08:00 2028-02-29T12:00:00+08:00
CLOCK_SUITES ?= tests/evaluation tests/intake tests/reporting tests/e2e
test-clock: venv
	@deploy/stack.sh up
	@status=0; for moment in $(CLOCK_MOMENTS); do \
	  offset=$$(( $$(date -d "$$moment" +%s) - $$(date +%s) )); \
	  echo "make test-clock: now is $$moment (SANWU_CLOCK_OFFSET_SECONDS=$$offset)"; \
	  SANWU_CLOCK_OFFSET_SECONDS=$$offset $(BIN)/pytest -m "not faults" $(CLOCK_SUITES) \
	    $(PYTEST_ARGS) || status=1; \
	done; exit $$status

# The ledger test on a three-node Kafka cluster (topics at replication factor 3,
# min.insync.replicas 2) while nodes are killed: a stack of its own, stopped afterwards.
CLUSTER_STACK_DIR ?= $(CURDIR)/.stack-cluster
CLUSTER_ENV = SANWU_STACK_DIR=$(CLUSTER_STACK_DIR) SANWU_PG_PORT=27432 SANWU_KAFKA_PORT=31092 \
	SANWU_KAFKA_CONTROLLER_PORT=31093 SANWU_KAFKA_BROKERS=3
test-cluster: venv
	@export $(CLUSTER_ENV) && deploy/stack.sh up && $(CLIENT_ENV) && \
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
	rm -rf .stack .stack-faults .stack-cluster

bench: venv
	@deploy/stack.sh up
	@bench/setup.sh
	@$(CLIENT_ENV) && $(BIN)/python -m bench run

# make bench-compare A=<file or commit> [B=<file or commit>]: two runs side by side.
bench-compare: venv
	$(BIN)/python -m bench compare $(A) $(or $(B),bench/results/latest.json)

bench-quick: venv
	@deploy/stack.sh up
	@bench/setup.sh
	@$(CLIENT_ENV) && $(BIN)/python -m bench run --quick
