"""The AsyncAPI document of the topics: it is AsyncAPI 3.0.0 by the official JSON schema (and a
broken copy is not), it has a channel per topic and an operation per Kafka right, its schemas
are the message models', each example is a message the consumers' parsers accept, and every
service that writes to Kafka serves it, as `sanwu topics asyncapi` prints it.
tests/e2e/test_topics_match_asyncapi.py holds what a run puts on the topics to it."""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from services.commands import topics_app
from shared import kafka_rights
from shared.asyncapi import asyncapi_document, serves_asyncapi
from shared.asyncapi.topics import CONTRACTS
from shared.config import Settings
from shared.consumer import Record, Rejected
from shared.messages import (
    parse_application_step,
    parse_case_step,
    parse_dispute_step,
    parse_early_warning,
    parse_event_record,
    parse_unit_indicators,
    parse_unit_status,
)
from tests.support.asyncapi import MessageChecker, problems_of
from tests.test_messages import record
from tests.test_openapi import FACTORIES

TOPICS_PAGE = Path(__file__).parents[1] / "docs" / "topics.md"
PARSERS: dict[str, Callable[[Record], object]] = {
    "EventRecord": parse_event_record,
    "UnitStatus": parse_unit_status,
    "UnitIndicators": parse_unit_indicators,
    "EarlyWarning": parse_early_warning,
    "ApplicationStep": parse_application_step,
    "DisputeStep": parse_dispute_step,
    "CaseStep": parse_case_step,
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document(Settings(environment="test", topic_prefix="t-asyncapi."))


def test_the_document_is_asyncapi_3(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert problems_of(document) == []


def broken_copies(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def changed(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        broken = copy.deepcopy(document)
        change(broken)
        return broken

    first = next(iter(document["operations"]))
    return {
        "no version": changed(lambda d: d["info"].pop("version")),
        "an AsyncAPI 2 verb": changed(lambda d: d["operations"][first].update(action="publish")),
        "no partitions": changed(
            lambda d: d["channels"]["unit-status"]["bindings"]["kafka"].update(partitions=0)
        ),
        # What pydantic writes and the document leaves out: AsyncAPI's is a property name.
        "an OpenAPI discriminator": changed(
            lambda d: d["components"]["schemas"]["EventRecord"]["properties"]["event"].update(
                discriminator={"propertyName": "type", "mapping": {}}
            )
        ),
        "a message without its schema": changed(
            lambda d: d["components"]["messages"]["UnitStatus"].update(payload=[])
        ),
    }


def test_a_broken_copy_of_the_document_fails_the_schema(document: dict[str, Any]) -> None:
    for what, broken in broken_copies(document).items():
        assert problems_of(broken), f"a document with {what} passed"


def test_every_topic_has_a_channel_at_its_address_under_the_prefix(
    document: dict[str, Any],
) -> None:
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        kafka_rights.topic_name(topic, "t-asyncapi.") for topic in kafka_rights.TOPICS
    }
    for channel in document["channels"].values():
        (ref,) = channel["messages"].values()
        assert (
            ref["$ref"].removeprefix("#/components/messages/") in document["components"]["messages"]
        )


def test_each_right_to_write_or_read_a_topic_is_an_operation(document: dict[str, Any]) -> None:
    expected = {
        (principal.removeprefix("sanwu-"), action, kafka_rights.topic_name(topic, ""))
        for principal, rights in kafka_rights.RIGHTS.items()
        for action, topics in (("send", rights.writes), ("receive", rights.reads))
        for topic in topics
    }
    found = set()
    for name, operation in document["operations"].items():
        channel_id = operation["channel"]["$ref"].removeprefix("#/channels/")
        service = name.split(".", 1)[0]
        found.add((service, operation["action"], channel_id))
        (message,) = operation["messages"]
        assert message["$ref"].startswith(f"#/channels/{channel_id}/messages/")
    assert found == expected
    assert ("cases", "send", "early-warnings") in found  # a topic with two producers


def test_the_payload_schemas_are_the_message_models(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert set(PARSERS) == {c.message for c in CONTRACTS if c.model is not None}
    for contract in CONTRACTS:
        message = document["components"]["messages"][contract.message]
        if contract.model is None:
            assert "$ref" not in message["payload"]  # a dead letter carries any bytes
            continue
        assert message["payload"] == {"$ref": f"#/components/schemas/{contract.message}"}
        schema = schemas[contract.message]
        assert set(schema["properties"]) == set(contract.model.model_fields)
        assert schema["additionalProperties"] is False


def test_each_example_validates_and_its_parser_accepts_it(document: dict[str, Any]) -> None:
    checker = MessageChecker(document)
    for name, message in document["components"]["messages"].items():
        (example,) = message["examples"]
        (key,) = message["bindings"]["kafka"]["key"].get("examples", [None])
        headers = example.get("headers", {})
        assert checker.problems(name, payload=example["payload"], headers=headers, key=key) == []
        if name in PARSERS:
            parsed = PARSERS[name](record(example["payload"], key=key.encode()))
            assert not isinstance(parsed, Rejected), (name, parsed)


def test_a_message_unlike_the_document_is_found_out(document: dict[str, Any]) -> None:
    checker = MessageChecker(document)
    status = document["components"]["messages"]["UnitStatus"]["examples"][0]["payload"]
    good = {"payload": status, "headers": {}, "key": "340722100201:2018"}
    assert checker.problems("UnitStatus", **good) == []
    bad = {
        "payload": status | {"three_no": "yes"},
        "headers": {"correlation_id": "c"} | {"source": "x"},
        "key": "340722100201",
    }
    found = checker.problems("UnitStatus", **bad)
    assert [problem.split(" ", 1)[0] for problem in found] == ["payload", "headers", "key"]
    assert checker.problems("DisputeStep", payload={}, headers={}, key=None)  # no type header
    record_payload = document["components"]["messages"]["EventRecord"]["examples"][0]["payload"]
    with_free_text = copy.deepcopy(record_payload)
    with_free_text["event"]["summary"] = 7
    assert checker.problems("EventRecord", payload=with_free_text, headers={}, key=None)


@pytest.mark.parametrize("service", list(FACTORIES))
async def test_every_service_that_writes_to_kafka_serves_the_document(
    service: str, settings: Settings
) -> None:
    assert serves_asyncapi(service)
    app = FACTORIES[service](None)  # the document needs no database: no lifespan
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{service}") as client:
        served = await client.get("/asyncapi.json")
        openapi = (await client.get("/openapi.json")).json()
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.json() == json.loads(json.dumps(asyncapi_document(settings)))
    assert served.json()["channels"]["petition-events"]["address"] == settings.events_topic
    assert "/asyncapi.json" not in openapi["paths"]  # OpenAPI describes HTTP only


def test_the_console_which_uses_no_kafka_serves_no_document() -> None:
    assert not serves_asyncapi("console")


def test_the_command_prints_or_writes_the_document(settings: Settings, tmp_path: Path) -> None:
    printed = CliRunner().invoke(topics_app, ["asyncapi"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == json.loads(json.dumps(asyncapi_document(settings)))
    path = tmp_path / "asyncapi.json"
    written = CliRunner().invoke(topics_app, ["asyncapi", "--output", str(path)])
    assert written.exit_code == 0, written.output
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(printed.stdout)


def test_the_topics_page_names_who_writes_and_reads_each_topic_as_the_rights_do() -> None:
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in TOPICS_PAGE.read_text(encoding="utf-8").splitlines()
        if line.startswith("| `")
    ]
    shown = {
        row[0].strip("`"): (names_in(row[4]), names_in(row[5]))
        for row in rows
        if row[0] != "`dead-letter`"  # written by every consumer, read by operators
    }
    expected: dict[str, tuple[set[str], set[str]]] = {}
    for principal, rights in kafka_rights.RIGHTS.items():
        service = principal.removeprefix("sanwu-")
        for topic in rights.writes + rights.reads:
            if topic != kafka_rights.DEAD_LETTERS:
                writers, readers = expected.setdefault(
                    kafka_rights.topic_name(topic, ""), (set(), set())
                )
                (writers if topic in rights.writes else readers).add(service)
    assert shown == expected


def names_in(cell: str) -> set[str]:
    """The services a cell names ("intake (ratings), audit" -> intake, audit)."""
    return {name.split(" (")[0].strip() for name in cell.split(",")}
