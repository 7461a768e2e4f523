"""Schemathesis against each running service's own OpenAPI schema: no input, however
malformed, gets a server error or an answer the schema does not describe. Applications and the
console are fuzzed on the security package's province (tests/support/one_province.py), in its
county B1 and a period no other test of it applies in."""

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core import NOT_SET
from schemathesis.generation import GenerationMode

from tests.conftest import COUNTY, SIBLING_TOWNSHIP, TOWNSHIP, VILLAGE, bearer
from tests.support.console import ConsoleStack
from tests.support.one_province import (
    ADMIN,
    OTHER_CITY,
    OTHER_CITY_COUNTIES,
    PROVINCE,
    Bureaus,
    campaign_units,
)

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
]
# Values that exist, so that generated requests also reach the answers behind the checks for
# unknown units and periods: (parameter location, name) -> values.
KNOWN_UNITS = [COUNTY, TOWNSHIP, VILLAGE, SIBLING_TOWNSHIP, "340700000000", "340000000000"]
KNOWN_PERIODS = ["2018", "2019", "rolling"]
KNOWN: dict[tuple[str, str], list[str]] = {
    ("path", "code"): KNOWN_UNITS,
    ("query", "root"): KNOWN_UNITS,
    ("query", "period"): KNOWN_PERIODS,
}


def with_known_values(
    operation: Any, known: Mapping[tuple[str, str], Sequence[str]]
) -> st.SearchStrategy[schemathesis.Case]:
    """Cases whose parameters named in `known` take one of the known values (the others are
    generated as usual)."""
    names = {(p.location.value, p.name) for p in operation.iter_parameters()}
    fixed = [key for key in known if key in names]
    if not fixed:
        return st.nothing()

    @st.composite
    def cases(draw: st.DrawFn) -> schemathesis.Case:
        values = {key: draw(st.sampled_from(known[key])) for key in fixed}
        path = {name: v for (where, name), v in values.items() if where == "path"}
        query = {name: v for (where, name), v in values.items() if where == "query"}
        return draw(operation.as_strategy(path_parameters=path or None, query=query or None))

    return cases()


def fuzz(
    base_url: str,
    *,
    headers: dict[str, str],
    max_examples: int = 40,
    negative: bool = False,
    known: Mapping[tuple[str, str], Sequence[str]] | None = None,
) -> dict[str, Counter[str]]:
    """Run every operation of the service's schema; returns, per operation exercised, what
    was sent (cases, and cases with a body). With `negative`, also inputs that break the
    schema; with `known`, also inputs that use the known values for those parameters."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    exercised: dict[str, Counter[str]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        strategies = [operation.as_strategy()]
        if negative and any(True for _ in operation.iter_parameters()):
            strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
        if known:
            strategies.append(with_known_values(operation, known))

        exercised[operation.label] = exercise(
            st.one_of(strategies), base_url=base_url, headers=headers, max_examples=max_examples
        )
    return exercised


def exercise(
    cases: st.SearchStrategy[schemathesis.Case],
    *,
    base_url: str,
    headers: dict[str, str],
    max_examples: int,
) -> Counter[str]:
    sent: Counter[str] = Counter()

    @given(case=cases)
    @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck))
    def call(case: schemathesis.Case) -> None:
        sent["cases"] += 1
        sent["bodies"] += case.body is not NOT_SET
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS)

    call()
    return sent


def test_intake_answers_every_input_as_documented(live_intake: str, keys: dict[str, str]) -> None:
    exercised = fuzz(live_intake, headers=bearer(keys["admin"]))
    assert {"POST /v1/events", "POST /v1/events/batch", "GET /v1/events/{event_id}"} <= set(
        exercised
    )
    # The batch is documented as a list of events (not a dangling reference): bodies are sent.
    for label in ("POST /v1/events", "POST /v1/events/batch"):
        assert exercised[label]["bodies"] == exercised[label]["cases"] > 0, exercised[label]


def test_reporting_answers_every_input_as_documented(
    live_reporting: str, keys: dict[str, str]
) -> None:
    # An admin reaches every answer; a township reader is refused most known units.
    for key in ("admin", "township_reader"):
        exercised = fuzz(
            live_reporting, headers=bearer(keys[key]), max_examples=100, negative=True, known=KNOWN
        )
    assert {
        "GET /v1/units/{code}/status",
        "GET /v1/reports/summary",
        "GET /v1/reports/eligible",
        "GET /v1/feed/status-changes",
    } <= set(exercised)


def test_evaluation_answers_every_input_as_documented(
    live_evaluation: str, keys: dict[str, str]
) -> None:
    exercised = fuzz(live_evaluation, headers=bearer(keys["admin"]))
    assert {"GET /healthz", "GET /readyz", "GET /metrics"} <= set(exercised)


# Applications: a draft in county B1 (the permission matrix works in A1, the CSRF tests in
# B2), its units, the roots above them and the period of its own.
FUZZED_COUNTY = OTHER_CITY_COUNTIES[0]
FUZZED_PERIOD = "2026"


async def test_applications_answers_every_input_as_documented(
    live_applications: str, province: ConsoleStack
) -> None:
    units = campaign_units(FUZZED_COUNTY)
    async with httpx.AsyncClient(base_url=live_applications) as client:
        draft = await Bureaus(client, province.keys[ADMIN]).apply(
            county=FUZZED_COUNTY, period=FUZZED_PERIOD, code=units[0], until="draft"
        )
    known: dict[tuple[str, str], list[str]] = {
        ("path", "application_id"): [draft["application_id"]],
        ("path", "code"): units[:3],
        ("path", "period"): [FUZZED_PERIOD],
        ("query", "root"): [FUZZED_COUNTY, OTHER_CITY, PROVINCE],
        ("query", "period"): [FUZZED_PERIOD],
    }
    # The admin reaches every answer (who is refused what: test_permission_matrix.py).
    exercised = await asyncio.to_thread(
        fuzz, live_applications, headers=bearer(province.keys[ADMIN]), negative=True, known=known
    )
    assert {
        "POST /v1/applications",
        "POST /v1/applications/{application_id}/submit",
        "POST /v1/applications/{application_id}/review",
        "POST /v1/applications/{application_id}/award",
        "GET /v1/applications/{application_id}/materials",
        "POST /v1/titles/{code}/{period}/revoke",
        "GET /v1/feed/applications",
    } <= set(exercised)


def test_the_console_answers_every_input_as_documented(live_console: str) -> None:
    # Its pages are for browsers (swept by test_hostile_inputs.py); its schema is the probes'.
    exercised = fuzz(live_console, headers={})
    assert {"GET /healthz", "GET /readyz", "GET /metrics"} <= set(exercised)
