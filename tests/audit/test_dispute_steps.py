"""Dispute steps in the log: each step on the disputes topic becomes one leaf however often it
is delivered, found by `GET /v1/log/leaf/dispute_step/{step_id}`, with the dispute's statement
and the step's reason (also inside a ruling's detail) only as their SHA-256; and
`sanwu audit verify` names a `cases.dispute_step` row changed in PostgreSQL.

The cases service does not run here: a dispute and its steps are written to its tables as the
migrator, as its repository writes them, and each step's message is produced to the disputes
topic as its relay would, keyed by the event."""

import contextlib
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition

from services.audit.consumers import HistoryConsumer
from services.audit.service import AuditLog
from shared import kafka
from shared.config import MIGRATOR_ROLE
from shared.consumer import Batch
from shared.dispute_steps import (
    Action,
    Decision,
    Dispute,
    DisputeStep,
    Grounds,
    Ruling,
    State,
    Step,
)
from tests.support.audit import SIBLING_VILLAGE, VILLAGE, AuditWorld, sanwu
from tests.support.stack import SUPERUSER, dsn_as

pytestmark = pytest.mark.timeout(180)

TOWNSHIP = "340722100000"  # the bureau above VILLAGE that decides its disputes
DESK_KEY = "d15e0a000001"
BUREAU_KEY = "b0e5a0000001"
STATEMENT = "该来访系邻村群众，联系人王五 13800000000"
RULING_REASON = "经核实，来访人户籍在邻村，改归邻村"

INSERT_DISPUTE_SQL = """
INSERT INTO cases.dispute
    (dispute_id, event_id, unit_code, grounds, proposed_unit, duplicate_of, statement,
     filer_scope, decider_code, state, decision, review_request_until, review, version,
     filed_at, changed_at)
VALUES ($1, $2, $3, 'not_ours', $4, NULL, $5, $3, $6, 'filed', NULL, NULL, NULL, 1, $7, $7)
"""
DECIDE_SQL = """
UPDATE cases.dispute SET state = 'decided', decision = $2::jsonb, review_request_until = $3,
       version = 2, changed_at = $4
WHERE dispute_id = $1
"""
INSERT_STEP_SQL = """
INSERT INTO cases.dispute_step
    (dispute_id, version, action, at, key_id, role, scope_code, reason, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
RETURNING step_id
"""


@dataclass(frozen=True)
class Disputed:
    filed: DisputeStep
    decided: DisputeStep


def written(at: datetime) -> str:
    """A moment as a leaf writes it, by hand."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def add_step(connection: asyncpg.Connection, dispute: Dispute, step: Step) -> int:
    step_id: int = await connection.fetchval(
        INSERT_STEP_SQL,
        dispute.dispute_id,
        step.version,
        step.action.value,
        step.at,
        step.key_id,
        step.role,
        step.scope_code,
        step.reason,
        json.dumps(step.detail, ensure_ascii=False),
    )
    return step_id


async def disputed(world: AuditWorld) -> Disputed:
    """A dispute filed by the village's desk and decided by the township (a re-attribution),
    each step in the cases service's tables and its message built as the cases service builds
    it."""
    filed_at = datetime.now(UTC)
    filed = Dispute(
        dispute_id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        unit_code=VILLAGE,
        grounds=Grounds.not_ours,
        proposed_unit=SIBLING_VILLAGE,
        duplicate_of=None,
        statement=STATEMENT,
        filer_scope=VILLAGE,
        decider_code=TOWNSHIP,
        state=State.filed,
        decision=None,
        review_request_until=None,
        review=None,
        version=1,
        filed_at=filed_at,
        changed_at=filed_at,
    )
    filing = Step(
        version=1,
        action=Action.filed,
        at=filed_at,
        key_id=DESK_KEY,
        role="desk",
        scope_code=VILLAGE,
        reason=STATEMENT,
        detail={},
    )
    decided_at = datetime.now(UTC)
    ruling = Ruling(
        decision=Decision.uphold_reattribute,
        new_unit=SIBLING_VILLAGE,
        reason=RULING_REASON,
        by=TOWNSHIP,
        at=decided_at,
    )
    until = date(2026, 12, 31)
    decided = filed.model_copy(
        update={
            "state": State.decided,
            "decision": ruling,
            "review_request_until": until,
            "version": 2,
            "changed_at": decided_at,
        }
    )
    ruled = {  # as the cases service writes a ruling in the step's detail
        "decision": "uphold_reattribute",
        "new_unit": SIBLING_VILLAGE,
        "reason": RULING_REASON,
        "by": TOWNSHIP,
        "at": decided_at.isoformat(),
    }
    deciding = Step(
        version=2,
        action=Action.decided,
        at=decided_at,
        key_id=BUREAU_KEY,
        role="bureau",
        scope_code=TOWNSHIP,
        reason=RULING_REASON,
        detail=ruled,
    )
    connection = await asyncpg.connect(dsn_as(MIGRATOR_ROLE, world.stack.database))
    try:
        async with connection.transaction():
            await connection.execute(
                INSERT_DISPUTE_SQL,
                filed.dispute_id,
                filed.event_id,
                VILLAGE,
                SIBLING_VILLAGE,
                STATEMENT,
                TOWNSHIP,
                filed_at,
            )
            filed_id = await add_step(connection, filed, filing)
            await connection.execute(
                DECIDE_SQL, filed.dispute_id, json.dumps(ruled), until, decided_at
            )
            decided_id = await add_step(connection, decided, deciding)
    finally:
        await connection.close()
    return Disputed(
        filed=DisputeStep(step_id=filed_id, dispute=filed, step=filing),
        decided=DisputeStep(step_id=decided_id, dispute=decided, step=deciding),
    )


async def publish(world: AuditWorld, *messages: DisputeStep) -> None:
    producer = kafka.producer(world.settings)
    await producer.start()
    try:
        for message in messages:
            await producer.send_and_wait(
                world.settings.disputes_topic,
                value=message.model_dump_json().encode(),
                key=message.key,
            )
    finally:
        await producer.stop()


async def the_topic(world: AuditWorld) -> Batch:
    """Every record on the disputes topic, as one batch."""
    batch: Batch = {}
    topic = world.settings.disputes_topic
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


async def test_a_dispute_step_delivered_twice_is_one_leaf_without_free_text(
    world: AuditWorld,
) -> None:
    steps = await disputed(world)
    # One key, one partition: once the decision's leaf is in, both filings were read.
    await publish(world, steps.filed, steps.filed, steps.decided)
    decided_index = await world.index_of("dispute_step", steps.decided.step_id)
    filed_index = await world.index_of("dispute_step", steps.filed.step_id)

    response = await world.audit.get(f"/v1/log/leaf/dispute_step/{steps.filed.step_id}")
    assert response.json() == {
        "kind": "dispute_step",
        "id": str(steps.filed.step_id),
        "index": filed_index,
    }
    leaves = await leaves_of(world, max(filed_index, decided_index) + 1)
    ids = [leaf["id"] for leaf in leaves if leaf["kind"] == "dispute_step"]
    assert ids.count(str(steps.filed.step_id)) == 1
    assert ids.count(str(steps.decided.step_id)) == 1

    dispute = steps.filed.dispute
    facts = {
        "kind": "dispute_step",
        "dispute_id": str(dispute.dispute_id),
        "event_id": str(dispute.event_id),
        "unit_code": VILLAGE,
        "grounds": "not_ours",
        "proposed_unit": SIBLING_VILLAGE,
        "duplicate_of": None,
        "statement_sha256": sha256(STATEMENT),
    }
    assert leaves[filed_index] == facts | {
        "id": str(steps.filed.step_id),
        "version": 1,
        "action": "filed",
        "at": written(steps.filed.step.at),
        "key_id": DESK_KEY,
        "role": "desk",
        "scope_code": VILLAGE,
        "reason_sha256": sha256(STATEMENT),
        "ruling": None,
    }
    assert leaves[decided_index] == facts | {
        "id": str(steps.decided.step_id),
        "version": 2,
        "action": "decided",
        "at": written(steps.decided.step.at),
        "key_id": BUREAU_KEY,
        "role": "bureau",
        "scope_code": TOWNSHIP,
        "reason_sha256": sha256(RULING_REASON),
        "ruling": {"decision": "uphold_reattribute", "new_unit": SIBLING_VILLAGE, "by": TOWNSHIP},
    }
    for index in (filed_index, decided_index):
        text = json.dumps(leaves[index], ensure_ascii=False)
        assert STATEMENT not in text and RULING_REASON not in text
        assert "王五" not in text and "13800000000" not in text and "户籍" not in text


async def test_a_batch_of_dispute_steps_delivered_again_appends_nothing(
    world: AuditWorld,
) -> None:
    steps = await disputed(world)
    await publish(world, steps.filed, steps.decided)
    await world.index_of("dispute_step", steps.decided.step_id)
    audit_log: AuditLog = world.app.state.audit_log
    before = await audit_log.sign()
    consumer: HistoryConsumer = world.app.state.history_consumers["audit-disputes"]
    assert consumer.group_id == f"{world.settings.topic_prefix}audit-disputes"
    batch = await the_topic(world)
    assert batch
    await consumer.handle(batch)
    await consumer.handle(batch)
    after = await audit_log.sign()
    assert (after.size, after.root_hash) == (before.size, before.root_hash)


async def test_verify_names_a_dispute_step_row_changed_in_the_database(
    world: AuditWorld,
) -> None:
    steps = await disputed(world)
    await publish(world, steps.filed, steps.decided)
    filed_index = await world.index_of("dispute_step", steps.filed.step_id)
    decided_index = await world.index_of("dispute_step", steps.decided.step_id)
    await world.checkpoint(covering=max(filed_index, decided_index) + 1)
    ran = await sanwu("audit", "verify", env=world.env)
    assert ran.code == 0, ran.stdout + ran.stderr  # the rows make the leaves the messages made

    rewrites = [
        ("reason = '撤回'", "reason = $2", STATEMENT, steps.filed.step_id),
        (
            "detail = jsonb_set(detail, '{decision}', '\"reject\"')",
            "detail = $2::jsonb",
            json.dumps(steps.decided.step.detail),
            steps.decided.step_id,
        ),
    ]
    superuser = await asyncpg.connect(dsn_as(SUPERUSER, world.stack.database))
    try:
        async with superuser.transaction():
            await superuser.execute("SET LOCAL session_replication_role = replica")
            for change, _, _, step_id in rewrites:
                await superuser.execute(
                    f"UPDATE cases.dispute_step SET {change} WHERE step_id = $1", step_id
                )
        ran = await sanwu("audit", "verify", env=world.env)
    finally:
        async with superuser.transaction():
            await superuser.execute("SET LOCAL session_replication_role = replica")
            for _, restore, value, step_id in rewrites:
                await superuser.execute(
                    f"UPDATE cases.dispute_step SET {restore} WHERE step_id = $1", step_id, value
                )
        await superuser.close()
    assert ran.code == 1, ran.stdout + ran.stderr
    assert sorted(ran.stdout.splitlines()) == sorted(
        f"leaf {index} (dispute_step {step.step_id}) differs from its row in cases.dispute_step"
        for index, step in [(filed_index, steps.filed), (decided_index, steps.decided)]
    )
    assert (await sanwu("audit", "verify", env=world.env)).code == 0  # restored
