"""The fault tests (`make test-faults`): processes, Kafka and PostgreSQL killed under load."""

from tests.support.ledger_checks import isolated, supervisor

__all__ = ["isolated", "supervisor"]  # fixtures of the ledger tests
