"""The contract each service serves: an OpenAPI document that validators accept, with stable
operation ids, a description on every route and a request example for every event type; and
/docs that works on a network without access to the internet (its assets are the service's)."""

import re
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate

from services.applications.main import create_app as create_applications_app
from services.audit.main import create_app as create_audit_app
from services.cases.main import create_app as create_cases_app
from services.evaluation.main import create_app as create_evaluation_app
from services.intake.main import create_app as create_intake_app
from services.reporting.main import create_app as create_reporting_app
from shared.config import Settings
from shared.events import EventType, event_adapter

FACTORIES = {
    "intake": create_intake_app,
    "evaluation": create_evaluation_app,
    "reporting": create_reporting_app,
    "applications": create_applications_app,
    "audit": create_audit_app,
    "cases": create_cases_app,
}
OPERATIONS = {"getHealth", "getReadiness", "getMetrics"}
# What generated clients are built on: renaming one breaks them.
EXPECTED_OPERATION_IDS = {
    "audit": OPERATIONS
    | {
        "getCheckpoint",
        "getLogPublicKey",
        "getLogEntries",
        "getLeafIndex",
        "getInclusionProof",
        "getConsistencyProof",
    },
    "cases": OPERATIONS
    | {
        "getCalendarYear",
        "fileDispute",
        "decideDispute",
        "requestDisputeReview",
        "reviewDispute",
        "withdrawDispute",
        "getDispute",
        "listDisputes",
        "getDisputeSteps",
        "registerCase",
        "registerCaseBatch",
        "routeCase",
        "objectToCase",
        "acceptCase",
        "declineCase",
        "extendCaseReply",
        "addCaseStep",
        "replyToCase",
        "rateCase",
        "requestCaseReview",
        "reviewCase",
        "closeCase",
        "getCase",
        "listCases",
        "getCaseSteps",
        "getCaseRates",
    },
    "intake": OPERATIONS | {"postEvent", "postEventBatch", "getEvent"},
    "evaluation": OPERATIONS | {"getEventEffect"},
    "reporting": OPERATIONS
    | {"getUnitStatus", "getSummary", "getEligibleUnits", "getStatusChanges"},
    "applications": OPERATIONS
    | {
        "createApplication",
        "submitApplication",
        "reviewApplication",
        "awardApplication",
        "listApplications",
        "getApplication",
        "getApplicationHistory",
        "listTitles",
        "revokeTitle",
        "getApplicationSteps",
    },
}
EVENT_COMPONENTS = {
    "PetitionVisit",
    "Incident",
    "PublicOpinion",
    "ScreeningMeeting",
    "SatisfactionRating",
    "EventVoided",
    "EventReattributed",
}


@pytest.fixture(params=list(FACTORIES))
def service(request: pytest.FixtureRequest, settings: Settings) -> str:
    # `settings`: the test environment the app factories read their settings from.
    name: str = request.param
    return name


async def client_of(name: str) -> httpx.AsyncClient:
    # The documentation needs no database: the app is served without its lifespan.
    app: FastAPI = FACTORIES[name](None)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")


async def document(name: str) -> dict[str, Any]:
    async with await client_of(name) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def each_operation(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]


async def test_the_document_passes_the_openapi_validator(service: str) -> None:
    validate(await document(service))


async def test_every_operation_has_a_stable_id_a_summary_and_a_description(
    service: str,
) -> None:
    operations = each_operation(await document(service))
    ids = [operation["operationId"] for _, _, operation in operations]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]*)*", i) for i in ids), ids
    assert EXPECTED_OPERATION_IDS[service] <= set(ids)
    for method, path, operation in operations:
        assert operation.get("summary"), f"{method} {path} has no summary"
        assert operation.get("description"), f"{method} {path} has no description"


def request_examples(schema: dict[str, Any], path: str) -> dict[str, Any]:
    body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    examples: dict[str, Any] = body["examples"]
    return examples


async def test_posting_an_event_has_a_valid_example_of_every_type() -> None:
    examples = request_examples(await document("intake"), "/v1/events")
    values = [example["value"] for example in examples.values()]
    assert {value["type"] for value in values} == set(EventType)
    for value in values:
        event_adapter.validate_python(value)


async def test_a_batch_is_documented_as_a_list_of_events_with_an_example() -> None:
    schema = await document("intake")
    batch = schema["components"]["schemas"]["BatchIn"]["properties"]["events"]
    refs = {ref["$ref"].rsplit("/", 1)[1] for ref in batch["items"]["oneOf"]}
    assert refs == EVENT_COMPONENTS
    assert set(schema["components"]["schemas"]) >= EVENT_COMPONENTS
    (example,) = request_examples(schema, "/v1/events/batch").values()
    assert {event["type"] for event in example["value"]["events"]} == set(EventType)
    for event in example["value"]["events"]:
        event_adapter.validate_python(event)


class Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


async def test_docs_load_nothing_from_another_host(service: str) -> None:
    async with await client_of(service) as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        parser = Assets()
        parser.feed(page.text)
        assert len(parser.urls) >= 3  # the script, the stylesheet, the icon
        assert not re.search(r"(https?:)?//", page.text.replace("\\/", "/")), page.text
        assert "url: '/openapi.json'" in page.text
        for url in parser.urls:
            assert url.startswith("/docs/assets/"), url
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert asset.content
        assert (await client.get("/docs/assets/index.html")).status_code == 404
        assert (await client.get("/redoc")).status_code == 404
