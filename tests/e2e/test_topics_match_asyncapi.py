"""What the services put on the topics is what the AsyncAPI document says: a small run through
every producer (events with a correction, a meeting and a rating through intake; statuses,
indicators and warnings from evaluation; an application and its flag; a dispute filed and
decided; a case registered overdue, which the cases service warns of; a record no
consumer can decode, dead-lettered), then every topic of the run read from its start, each
message's value, key and headers checked against its channel's message."""

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import kafka, kafka_rights
from shared.access.models import Role
from shared.asyncapi import asyncapi_document
from shared.asyncapi.topics import CONTRACTS, Contract
from shared.campaign import SHANGHAI, system_now
from shared.config import Settings
from tests.conftest import COUNTY, DEMO_UNITS, SIBLING_VILLAGE, TOWNSHIP, VILLAGE
from tests.support import events
from tests.support.app import bearer
from tests.support.applications import act, create
from tests.support.asyncapi import MessageChecker
from tests.support.cases import MovableClock, dispute, years_covered
from tests.support.pipeline import KeySpecs, Pipeline, running_pipeline
from tests.support.stack import IsolatedStack, read_topic
from tests.support.waiting import poll, wait_until

PERIOD = "2018"
KEYS: KeySpecs = {
    "village_desk": (Role.desk, VILLAGE),
    "township_desk": (Role.desk, TOWNSHIP),
    "county_desk": (Role.desk, COUNTY),
    "county_bureau": (Role.bureau, COUNTY),
}
# Planted on the status topic for the consumers to dead-letter; the one message of the run that
# is not the document's on purpose.
NOT_A_STATUS = b"not a unit status " + uuid.uuid4().hex.encode()


@dataclass
class Run:
    pipeline: Pipeline
    cases: httpx.AsyncClient

    def key(self, name: str) -> dict[str, str]:
        return bearer(self.pipeline.keys[name])


@pytest.fixture(scope="module")
async def run(
    stack: IsolatedStack, campaign_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Run]:
    """Intake, evaluation, reporting, applications and cases on a database and topics of their
    own. Every topic of the run is deleted afterwards (the pipeline deletes only some)."""
    used: list[Settings] = []
    try:
        async with running_pipeline(
            campaign_file=campaign_file,
            registry=[DEMO_UNITS],
            keys=KEYS,
            applications=True,
            cases=MovableClock(),
        ) as pipeline:
            used.append(pipeline.settings)
            assert pipeline.cases is not None
            this_year = system_now().astimezone(SHANGHAI).year
            async with years_covered(
                pipeline.db,
                {this_year - 1, this_year, this_year + 1},
                tmp_path_factory.mktemp("calendar"),
                database_url=pipeline.settings.database_url,
            ):
                yield Run(pipeline, pipeline.cases)
    finally:
        for settings in used:
            with contextlib.suppress(Exception):
                await kafka.delete_topics(settings, [t.name for t in kafka.topic_specs(settings)])


async def post_events(run: Run) -> dict[str, Any]:
    """Visits, an incident and a public opinion, a meeting and a rating; a void and a
    re-attribution. Returns the visit of six people (a collective visit of the village)."""
    collective = events.visit(VILLAGE, headcount=6, petitioner_ref="342623198001011234")
    near = events.visit(VILLAGE, headcount=4)  # near the village's threshold of 5
    incident = events.incident(VILLAGE)
    opinion = {
        "event_id": events.new_id(),
        "type": "public_opinion",
        "unit_code": VILLAGE,
        "occurred_at": events.DEFAULT_TIME,
        "platform": "微博",
        "summary": "负面炒作",
    }
    work = [
        events.meeting(VILLAGE, summary="村排查调处例会"),
        events.rating(VILLAGE, "dissatisfied", source="third_party", matter_ref="事项-1"),
    ]
    pipeline = run.pipeline
    await pipeline.post(pipeline.keys["village_desk"], collective, near, incident, opinion, *work)
    await pipeline.post(
        pipeline.keys["county_desk"],
        events.voided(incident),
        events.reattributed(opinion, SIBLING_VILLAGE),  # flags the sibling's application
    )
    await pipeline.drained()
    return collective


async def apply_for_the_sibling(run: Run) -> None:
    """An application submitted for the sibling village: under review, its unit is flagged
    when it stops being three-no (a step with no key)."""
    applications = run.pipeline.applications
    assert applications is not None
    bureau = run.pipeline.keys["county_bureau"]
    created = await create(applications, bureau, period=PERIOD, codes=(SIBLING_VILLAGE,))
    assert created.status_code == 201, created.text
    submitted = await act(applications, bureau, application=created.json(), action="submit")
    assert submitted.status_code == 200, submitted.text


async def dispute_and_decide(run: Run, event_id: str) -> None:
    body = dispute(event_id)

    async def filed() -> httpx.Response | None:
        response = await run.cases.post("/v1/disputes", json=body, headers=run.key("village_desk"))
        return None if response.status_code == 404 else response

    response = await poll(filed, timeout=30, message="the event to reach the cases service")
    assert response.status_code == 201, response.text
    path = f"/v1/disputes/{body['dispute_id']}"
    shown = await run.cases.get(path, headers=run.key("county_bureau"))
    assert shown.status_code == 200, shown.text
    decided = await run.cases.post(
        f"{path}/decide",
        json={"decision": "reject", "reason": "来访人确为本村村民"},
        headers=run.key("county_bureau") | {"If-Match": shown.headers["ETag"]},
    )
    assert decided.status_code == 200, decided.text


async def register_an_overdue_case(run: Run) -> None:
    """A case received forty days ago and not routed: overdue as it is registered, which the
    cases service warns of."""
    received = system_now().astimezone(SHANGHAI) - timedelta(days=40)
    registered = await run.cases.post(
        "/v1/cases",
        json={
            "case_id": str(uuid.uuid4()),
            "unit_code": VILLAGE,
            "received_at": received.isoformat(),
            "channel": "letter",
            "category": "土地征收",
            "petitioner_ref": "342623198001011234",
            "headcount": 1,
            "summary": "征地补偿款未足额发放",
        },
        headers=run.key("township_desk"),
    )
    assert registered.status_code == 201, registered.text


async def plant_a_record_no_consumer_decodes(run: Run) -> None:
    producer = kafka.producer(run.pipeline.settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            run.pipeline.settings.status_topic,
            value=NOT_A_STATUS,
            key=b"garbage",
            headers=[("correlation_id", b"t-asyncapi")],
        )
    finally:
        await producer.stop()


Message = tuple[int, bytes | None, bytes, dict[str, bytes]]


async def on_topic(run: Run, contract: Contract) -> list[Message]:
    """The topic's messages, but for the one planted (its dead letters are kept)."""
    messages = await read_topic(
        run.pipeline.settings, getattr(run.pipeline.settings, contract.topic)
    )
    if contract.topic != kafka_rights.STATUSES:
        return messages
    return [m for m in messages if m[2] != NOT_A_STATUS]


async def still_missing(run: Run) -> list[str]:
    """What is not out yet of every producer's messages: something on each topic, both kinds
    of warning, the application's flag, the dispute's decision and both dead letters."""
    found = {c.message: await on_topic(run, c) for c in CONTRACTS}
    kinds = {json.loads(m[2])["kind"] for m in found["EarlyWarning"]}
    actions = {json.loads(m[2])["action"] for m in found["ApplicationStep"]}
    expected = {f"a message on {name}": bool(messages) for name, messages in found.items()} | {
        "an evaluation warning": "near_threshold" in kinds,
        "a case warning": "case_overdue" in kinds,
        "a flag step": "flagged" in actions,
        "a decision": len(found["DisputeStep"]) >= 2,
        "two dead letters (reporting's, applications')": len(found["DeadLetter"]) >= 2,
    }
    return [what for what, there in expected.items() if not there]


async def wait_for_every_producer(run: Run) -> None:
    missing: list[str] = []

    async def complete() -> bool:
        missing[:] = await still_missing(run)
        return not missing

    try:
        await wait_until(complete, timeout=60, message="every producer's messages")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; missing: {', '.join(missing)}") from None


def problems(checker: MessageChecker, contract: Contract, message: Message) -> list[str]:
    partition, key, value, headers = message
    payload = json.loads(value) if contract.model is not None else value.decode(errors="replace")
    found = checker.problems(
        contract.message,
        payload=payload,
        headers={name: text.decode() for name, text in headers.items()},
        key=None if key is None else key.decode(),
    )
    if contract.model is not None and key is None:
        found.append("no key")
    return [f"{contract.channel} (partition {partition}): {p}" for p in found]


async def test_every_message_of_a_run_on_every_topic_is_the_documents(run: Run) -> None:
    await apply_for_the_sibling(run)
    collective = await post_events(run)
    await dispute_and_decide(run, collective["event_id"])
    await register_an_overdue_case(run)
    await plant_a_record_no_consumer_decodes(run)
    await wait_for_every_producer(run)

    checker = MessageChecker(asyncapi_document(run.pipeline.settings))
    found: list[str] = []
    counts = {}
    for contract in CONTRACTS:
        messages = await on_topic(run, contract)
        counts[contract.channel] = len(messages)
        for message in messages:
            found += problems(checker, contract, message)
    assert found == [], "\n".join(found)
    assert all(counts.values()), counts
    assert counts["dead-letter"] >= 2 and counts["petition-events"] >= 8
