"""One leaf per record, whatever reaches the log again: a batch redelivered (as after a crash
between the append's commit and the offsets'), both topics replayed from their start by a new
consumer group, a key operation queued twice. The log keeps its size and its root."""

import asyncio
import contextlib
import uuid

import asyncpg
import pytest
from aiokafka import TopicPartition

from services.audit.checkpoints import Checkpoint
from services.audit.consumers import HistoryConsumer, history_consumers
from services.audit.key_operations import KeyOperationsDrain
from services.audit.service import AuditLog
from shared import kafka
from shared.campaign import system_now
from shared.config import MIGRATOR_ROLE
from shared.consumer import Batch
from tests.support.audit import VILLAGE, AuditWorld
from tests.support.events import visit
from tests.support.stack import dsn_as
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


async def settled(world: AuditWorld) -> Checkpoint:
    """The log once an event and a step posted now are in it: a checkpoint of all of it."""
    event_id = await world.post_event(visit(VILLAGE))
    step_id = await world.add_step(reason="复核")
    await world.index_of("event", event_id)
    await world.index_of("application_step", step_id)
    audit_log: AuditLog = world.app.state.audit_log
    return await audit_log.sign()


async def whole_topic(world: AuditWorld, topic: str) -> Batch:
    batch: Batch = {}
    async with contextlib.aclosing(kafka.read_to_end(world.settings, topic)) as chunks:
        async for records in chunks:
            for record in records:
                batch.setdefault(TopicPartition(record.topic, record.partition), []).append(record)
    return batch


async def test_a_batch_delivered_again_appends_nothing(world: AuditWorld) -> None:
    before = await settled(world)
    consumers: dict[str, HistoryConsumer] = world.app.state.history_consumers
    for name, topic in [
        ("audit-events", world.settings.events_topic),
        ("audit-applications", world.settings.application_topic),
    ]:
        batch = await whole_topic(world, topic)
        assert batch
        await consumers[name].handle(batch)
        await consumers[name].handle(batch)
    after = await world.app.state.audit_log.sign()
    assert (after.size, after.root_hash) == (before.size, before.root_hash)


async def test_a_replay_from_the_start_leaves_the_same_tree(world: AuditWorld) -> None:
    before = await settled(world)
    settings = world.settings.model_copy(
        update={"audit_consumer_group": f"replay-{uuid.uuid4().hex[:8]}"}
    )
    replaying = history_consumers(
        db=world.app.state.db, settings=settings, clock=system_now, on_append=lambda: None
    )
    admin = kafka.admin(settings)
    await admin.start()
    offsets = kafka.consumer(settings, group_id=None)
    await offsets.start()
    try:
        for consumer in replaying.values():
            consumer.start()

        async def caught_up() -> bool:
            for consumer in replaying.values():
                # Both topics have the events' partition count (shared.kafka.topic_specs).
                partitions = range(settings.event_partitions)
                ends = await offsets.end_offsets(
                    [TopicPartition(consumer.topic, p) for p in partitions]
                )
                committed = await kafka.committed_offsets(admin, consumer.group_id) or {}
                if any(committed.get(tp, 0) < end for tp, end in ends.items()):
                    return False
            return True

        await wait_until(caught_up, timeout=60, message="the replay to reach the topics' ends")
    finally:
        await asyncio.gather(*(consumer.stop() for consumer in replaying.values()))
        await offsets.stop()
        await admin.close()
    after = await world.app.state.audit_log.sign()
    assert (after.size, after.root_hash) == (before.size, before.root_hash)


async def test_a_key_operation_queued_again_appends_nothing(world: AuditWorld) -> None:
    before = await settled(world)
    drain: KeyOperationsDrain = world.app.state.key_operations
    connection = await asyncpg.connect(dsn_as(MIGRATOR_ROLE, world.stack.database))
    try:
        await connection.execute(
            "INSERT INTO access.key_operations_outbox "
            "SELECT id, at, action, key_id, role, scope_code, actor FROM access.key_audit "
            "WHERE id = 1 ON CONFLICT DO NOTHING"
        )
        await wait_until(
            lambda: connection.fetchval("SELECT count(*) = 0 FROM access.key_operations_outbox"),
            timeout=20,
            message="the outbox to be drained",
        )
    finally:
        await connection.close()
    assert (await drain.drain_once()).appended == 0
    after = await world.app.state.audit_log.sign()
    assert (after.size, after.root_hash) == (before.size, before.root_hash)


async def test_a_key_made_now_is_logged_once(world: AuditWorld) -> None:
    from shared.access import service as access_service
    from shared.access.models import Role

    async with world.db.engine.begin() as connection:
        await access_service.create(
            connection, role=Role.reader, scope_code=None, actor="key:a1b2c3d4e5f6"
        )
        audit_id = await connection.exec_driver_sql("SELECT max(id) FROM access.key_audit")
        (newest,) = audit_id.one()
    index = await world.index_of("key_operation", newest)
    response = await world.audit.get("/v1/log/entries", params={"start": index, "end": index + 1})
    assert '"actor":"key:a1b2c3d4e5f6"' in response.json()["entries"][0]["leaf"]


async def test_a_key_operation_a_service_role_records_reaches_the_log(world: AuditWorld) -> None:
    """The trigger queues it with its owner's rights: the role needs, and has, no right on the
    outbox."""
    connection = await asyncpg.connect(dsn_as("sanwu_intake", world.stack.database))
    try:
        await connection.execute(
            "INSERT INTO access.key_audit (action, key_id, role, actor) "
            "VALUES ('expired', 'f00dfeed0001', 'desk', 'system')"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.fetch("SELECT * FROM access.key_operations_outbox")
    finally:
        await connection.close()
    async with world.db.engine.connect() as migrator:
        found = await migrator.exec_driver_sql(
            "SELECT id FROM access.key_audit WHERE key_id = 'f00dfeed0001'"
        )
        (audit_id,) = found.one()
    index = await world.index_of("key_operation", audit_id)
    response = await world.audit.get("/v1/log/entries", params={"start": index, "end": index + 1})
    assert '"action":"expired"' in response.json()["entries"][0]["leaf"]
