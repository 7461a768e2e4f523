"""Schemathesis against each running service's own OpenAPI schema: no input, however
malformed, gets a server error or an answer the schema does not describe."""

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import bearer

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
]


def fuzz(base_url: str, *, headers: dict[str, str], max_examples: int = 40) -> list[str]:
    """Run every operation of the service's schema; returns the operations exercised."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    exercised = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

        call()
        exercised.append(operation.label)
    return exercised


def test_intake_answers_every_input_as_documented(live_intake: str, keys: dict[str, str]) -> None:
    exercised = fuzz(live_intake, headers=bearer(keys["admin"]))
    assert {"POST /v1/events", "POST /v1/events/batch", "GET /v1/events/{event_id}"} <= set(
        exercised
    )
