"""Tests of the three-node Kafka cluster (`make test-cluster`). Elsewhere they are skipped: they
kill the cluster's nodes, and the single broker the rest of the suite uses cannot lose one."""

import os

import pytest

from tests.support.ledger_checks import isolated, supervisor
from tests.support.stack import BROKERS

__all__ = ["isolated", "supervisor"]  # fixtures of the ledger test

if BROKERS >= 3:
    # Topics as production makes them, unless the run says otherwise.
    os.environ.setdefault("SANWU_KAFKA_REPLICATION_FACTOR", "3")
    os.environ.setdefault("SANWU_KAFKA_MIN_INSYNC_REPLICAS", "2")


@pytest.fixture(autouse=True)
def needs_cluster() -> None:
    if BROKERS < 3:
        pytest.skip("needs the three-node Kafka cluster: make test-cluster")
