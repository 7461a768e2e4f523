"""Case steps in the log: each step on the cases topic becomes one leaf however often it is
delivered, found by `GET /v1/log/leaf/case_step/{step_id}`, with the step's reason, the case's
category and the text in a step's detail (a refusal's channel) only as their SHA-256, the
petitioner only as the keyed hash the case holds; and `sanwu audit verify` names a
`cases.case_step` row changed in PostgreSQL.

The cases service does not run here: a case and its steps are written to its tables as the
migrator, as its repository writes them, and each step's message is produced to the cases topic
as its relay would, keyed by the case."""

import contextlib
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition

from services.audit.consumers import HistoryConsumer
from services.audit.service import AuditLog
from shared import kafka
from shared.case_steps import Action, Case, CaseState, CaseStep, Channel, Step
from shared.config import MIGRATOR_ROLE
from shared.consumer import Batch
from tests.support.audit import COUNTY, VILLAGE, AuditWorld, sanwu
from tests.support.stack import SUPERUSER, dsn_as

pytestmark = pytest.mark.timeout(180)

TOWNSHIP = "340722100000"  # the unit above VILLAGE, whose desk registers the case
DESK_KEY = "ca5e0a000001"
HANDLER_KEY = "ca5e0b000001"
BODY = "民政"
CATEGORY = "征地拆迁补偿"
PETITIONER_REF = "hmac-sha256:" + "ab" * 32  # as the cases service keeps it
SUMMARY = "张三反映村里征地补偿款未发放，联系电话 13900000000"
DECLINE_REASON = "该事项已进入诉讼程序，依法不予受理"
CHANNEL = "请向县人民法院提起诉讼"

INSERT_CASE_SQL = """
INSERT INTO cases.case
    (case_id, unit_code, first_receiver, owner_unit, owner_body, received_at, channel, category,
     petitioner_ref, headcount, event_ids, state, repeat_of, reviews, rating, content_hash,
     version, registered_at, changed_at)
VALUES ($1, $2, $3, $3, NULL, $4, $5, $6, $7, $8, $9, 'registered', NULL, 0, NULL, $10, 1,
        $11, $11)
"""
INSERT_SUMMARY_SQL = "INSERT INTO cases.case_summary (case_id, summary) VALUES ($1, $2)"
MOVE_SQL = """
UPDATE cases.case SET state = $2, owner_unit = $3, owner_body = $4, version = $5, changed_at = $6
WHERE case_id = $1
"""
INSERT_STEP_SQL = """
INSERT INTO cases.case_step
    (case_id, version, action, at, recorded_at, key_id, role, scope_code, body, reason, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)
RETURNING step_id
"""


@dataclass(frozen=True)
class Handled:
    registered: CaseStep
    routed: CaseStep
    declined: CaseStep

    @property
    def steps(self) -> tuple[CaseStep, ...]:
        return (self.registered, self.routed, self.declined)


def written(at: datetime) -> str:
    """A moment as a leaf writes it, by hand."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def add_step(connection: asyncpg.Connection, case: Case, step: Step) -> int:
    step_id: int = await connection.fetchval(
        INSERT_STEP_SQL,
        case.case_id,
        step.version,
        step.action.value,
        step.at,
        step.recorded_at,
        step.key_id,
        step.role,
        step.scope_code,
        step.body,
        step.reason,
        json.dumps(step.detail, ensure_ascii=False),
    )
    return step_id


def moved(case: Case, *, state: CaseState, owner_unit: str, owner_body: str | None) -> Case:
    changed_at = datetime.now(UTC)
    return case.model_copy(
        update={
            "state": state,
            "owner_unit": owner_unit,
            "owner_body": owner_body,
            "version": case.version + 1,
            "changed_at": changed_at,
        }
    )


async def handled(world: AuditWorld) -> Handled:
    """A case registered by the township's desk, routed to the county's 民政 and declined by it
    with the proper channel, each step in the cases service's tables and its message built as
    the cases service builds it."""
    now = datetime.now(UTC)
    registered = Case(
        case_id=uuid.uuid4(),
        unit_code=VILLAGE,
        first_receiver=TOWNSHIP,
        owner_unit=TOWNSHIP,
        owner_body=None,
        received_at=now - timedelta(days=2),
        channel=Channel.letter,
        category=CATEGORY,
        petitioner_ref=PETITIONER_REF,
        headcount=2,
        event_ids=[uuid.uuid4()],
        state=CaseState.registered,
        repeat_of=None,
        reviews=0,
        rating=None,
        version=1,
        registered_at=now,
        changed_at=now,
    )
    desk = {"key_id": DESK_KEY, "role": "desk", "scope_code": TOWNSHIP, "body": None}
    registering = Step(
        version=1,
        action=Action.registered,
        at=registered.received_at,
        recorded_at=now,
        reason="",
        detail={},
        **desk,
    )
    routed = moved(registered, state=CaseState.routed, owner_unit=COUNTY, owner_body=BODY)
    routing = Step(
        version=2,
        action=Action.routed,
        at=routed.changed_at,
        recorded_at=routed.changed_at,
        reason="",
        detail={"unit_code": COUNTY, "body": BODY, "from": TOWNSHIP},
        **desk,
    )
    declined = moved(routed, state=CaseState.declined, owner_unit=COUNTY, owner_body=BODY)
    notified_at = declined.changed_at.isoformat()
    declining = Step(
        version=3,
        action=Action.declined,
        at=declined.changed_at,
        recorded_at=declined.changed_at,
        key_id=HANDLER_KEY,
        role="handler",
        scope_code=COUNTY,
        body=BODY,
        reason=DECLINE_REASON,
        detail={"notified_at": notified_at, "channel": CHANNEL},
    )
    connection = await asyncpg.connect(dsn_as(MIGRATOR_ROLE, world.stack.database))
    try:
        async with connection.transaction():
            await connection.execute(
                INSERT_CASE_SQL,
                registered.case_id,
                VILLAGE,
                TOWNSHIP,
                registered.received_at,
                registered.channel.value,
                CATEGORY,
                PETITIONER_REF,
                registered.headcount,
                registered.event_ids,
                "0" * 64,
                now,
            )
            await connection.execute(INSERT_SUMMARY_SQL, registered.case_id, SUMMARY)
            ids = [await add_step(connection, registered, registering)]
            for case, step in [(routed, routing), (declined, declining)]:
                await connection.execute(
                    MOVE_SQL,
                    case.case_id,
                    case.state.value,
                    case.owner_unit,
                    case.owner_body,
                    case.version,
                    case.changed_at,
                )
                ids.append(await add_step(connection, case, step))
    finally:
        await connection.close()
    return Handled(
        registered=CaseStep(step_id=ids[0], case=registered, step=registering),
        routed=CaseStep(step_id=ids[1], case=routed, step=routing),
        declined=CaseStep(step_id=ids[2], case=declined, step=declining),
    )


async def publish(world: AuditWorld, *messages: CaseStep) -> None:
    producer = kafka.producer(world.settings)
    await producer.start()
    try:
        for message in messages:
            await producer.send_and_wait(
                world.settings.cases_topic,
                value=message.model_dump_json().encode(),
                key=message.key,
            )
    finally:
        await producer.stop()


async def the_topic(world: AuditWorld) -> Batch:
    """Every record on the cases topic, as one batch."""
    batch: Batch = {}
    topic = world.settings.cases_topic
    async with contextlib.aclosing(kafka.read_to_end(world.settings, topic)) as chunks:
        async for records in chunks:
            for record in records:
                batch.setdefault(TopicPartition(record.topic, record.partition), []).append(record)
    return batch


async def leaves_of(world: AuditWorld, end: int) -> list[dict[str, Any]]:
    """The log's leaves [0, end), parsed."""
    found: list[dict[str, Any]] = []
    for start in range(0, end, 1000):
        response = await world.audit.get(
            "/v1/log/entries", params={"start": start, "end": min(start + 1000, end)}
        )
        assert response.status_code == 200, response.text
        found += [json.loads(entry["leaf"]) for entry in response.json()["entries"]]
    return found


async def test_a_case_step_delivered_twice_is_one_leaf_without_free_text(
    world: AuditWorld,
) -> None:
    case = await handled(world)
    # One key, one partition: once the refusal's leaf is in, every earlier record was read.
    await publish(world, case.registered, case.registered, case.routed, case.declined)
    await world.index_of("case_step", case.declined.step_id)
    indexes = [await world.index_of("case_step", step.step_id) for step in case.steps]

    response = await world.audit.get(f"/v1/log/leaf/case_step/{case.registered.step_id}")
    assert response.json() == {
        "kind": "case_step",
        "id": str(case.registered.step_id),
        "index": indexes[0],
    }
    leaves = await leaves_of(world, max(indexes) + 1)
    ids = [leaf["id"] for leaf in leaves if leaf["kind"] == "case_step"]
    assert [ids.count(str(step.step_id)) for step in case.steps] == [1, 1, 1]

    registered = case.registered.case
    facts = {
        "kind": "case_step",
        "case_id": str(registered.case_id),
        "unit_code": VILLAGE,
        "first_receiver": TOWNSHIP,
        "received_at": written(registered.received_at),
        "channel": "letter",
        "category_sha256": sha256(CATEGORY),
        "petitioner_ref": PETITIONER_REF,
        "headcount": 2,
        "event_ids": [str(registered.event_ids[0])],
        "repeat_of": None,
        "registered_at": written(registered.registered_at),
    }
    desk = {"key_id": DESK_KEY, "role": "desk", "scope_code": TOWNSHIP, "body": None}
    assert leaves[indexes[0]] == facts | desk | {
        "id": str(case.registered.step_id),
        "version": 1,
        "action": "registered",
        "at": written(registered.received_at),
        "recorded_at": written(registered.registered_at),
        "reason_sha256": sha256(""),
        "detail": {},
    }
    routing = case.routed.step
    assert leaves[indexes[1]] == facts | desk | {
        "id": str(case.routed.step_id),
        "version": 2,
        "action": "routed",
        "at": written(routing.at),
        "recorded_at": written(routing.recorded_at),
        "reason_sha256": sha256(""),
        "detail": {"unit_code": COUNTY, "body": BODY, "from": TOWNSHIP},
    }
    declining = case.declined.step
    assert leaves[indexes[2]] == facts | {
        "id": str(case.declined.step_id),
        "version": 3,
        "action": "declined",
        "at": written(declining.at),
        "recorded_at": written(declining.recorded_at),
        "key_id": HANDLER_KEY,
        "role": "handler",
        "scope_code": COUNTY,
        "body": BODY,
        "reason_sha256": sha256(DECLINE_REASON),
        "detail": {
            "notified_at": declining.detail["notified_at"],
            "channel_sha256": sha256(CHANNEL),
        },
    }
    for index in indexes:
        text = json.dumps(leaves[index], ensure_ascii=False)
        for free in (CATEGORY, SUMMARY, DECLINE_REASON, CHANNEL, "张三", "13900000000", "法院"):
            assert free not in text


async def test_a_batch_of_case_steps_delivered_again_appends_nothing(world: AuditWorld) -> None:
    case = await handled(world)
    await publish(world, *case.steps)
    await world.index_of("case_step", case.declined.step_id)
    audit_log: AuditLog = world.app.state.audit_log
    before = await audit_log.sign()
    consumer: HistoryConsumer = world.app.state.history_consumers["audit-cases"]
    assert consumer.group_id == f"{world.settings.topic_prefix}audit-cases"
    batch = await the_topic(world)
    assert batch
    await consumer.handle(batch)
    await consumer.handle(batch)
    after = await audit_log.sign()
    assert (after.size, after.root_hash) == (before.size, before.root_hash)


async def test_verify_names_a_case_step_row_changed_in_the_database(world: AuditWorld) -> None:
    case = await handled(world)
    await publish(world, *case.steps)
    indexes = [await world.index_of("case_step", step.step_id) for step in case.steps]
    await world.checkpoint(covering=max(indexes) + 1)
    ran = await sanwu("audit", "verify", env=world.env)
    # The rows make the leaves the messages made, though the case has moved on since.
    assert ran.code == 0, ran.stdout + ran.stderr

    rewrites = [
        ("reason = '已受理'", "reason = $2", DECLINE_REASON, case.declined.step_id),
        (
            "detail = jsonb_set(detail, '{unit_code}', '\"340722101201\"')",
            "detail = $2::jsonb",
            json.dumps(case.routed.step.detail, ensure_ascii=False),
            case.routed.step_id,
        ),
    ]
    superuser = await asyncpg.connect(dsn_as(SUPERUSER, world.stack.database))
    try:
        async with superuser.transaction():
            await superuser.execute("SET LOCAL session_replication_role = replica")
            for change, _, _, step_id in rewrites:
                await superuser.execute(
                    f"UPDATE cases.case_step SET {change} WHERE step_id = $1", step_id
                )
        ran = await sanwu("audit", "verify", env=world.env)
    finally:
        async with superuser.transaction():
            await superuser.execute("SET LOCAL session_replication_role = replica")
            for _, restore, value, step_id in rewrites:
                await superuser.execute(
                    f"UPDATE cases.case_step SET {restore} WHERE step_id = $1", step_id, value
                )
        await superuser.close()
    assert ran.code == 1, ran.stdout + ran.stderr
    assert sorted(ran.stdout.splitlines()) == sorted(
        f"leaf {indexes[position]} (case_step {step.step_id}) differs from its row in "
        "cases.case_step"
        for position, step in [(2, case.declined), (1, case.routed)]
    )
    assert (await sanwu("audit", "verify", env=world.env)).code == 0  # restored
