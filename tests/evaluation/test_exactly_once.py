"""Exactly once in effect: redelivered events change nothing; a consumer killed (-9) in the
middle of a batch, before or after its transaction commits, leaves statuses that equal a
rebuild from scratch once it is back; two instances in one group apply each event once."""

import asyncio
import os
import random
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from services.evaluation.config import EvaluationSettings
from services.evaluation.consumers import CRASH_EXIT_CODE, EvaluationConsumer
from services.evaluation.live.service import Applied, Incoming
from services.evaluation.rebuild.run import rebuild
from shared import kafka
from shared.campaign import system_now
from shared.db import Database
from shared.events import EventRecord, event_adapter
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import (
    Desk,
    Worlds,
    all_statuses,
    applied_count,
    content,
    mixed_workload,
    offset_seconds,
    post_workload,
    status,
    wait_applied,
)
from tests.support import events
from tests.support.outbox import wait_outbox_drained
from tests.support.waiting import poll, wait_until

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def app_consumer_paused(evaluation: Evaluation) -> AsyncIterator[None]:
    """The service's own consumer stands aside while the test runs others."""
    await evaluation.worker.consumer.stop()
    try:
        yield
    finally:
        evaluation.worker.consumer.start()


async def topic_ends(settings: EvaluationSettings) -> dict[TopicPartition, int]:
    return await kafka.end_offsets(settings, settings.events_topic)


async def group_offsets(
    settings: EvaluationSettings, *, reset_to: int | None = None
) -> dict[TopicPartition, int]:
    """The group's committed offsets (after setting them all to `reset_to`, if given). The group
    must have no members."""
    ends = await topic_ends(settings)
    consumer = kafka.consumer(settings, group_id=settings.group_id)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        if reset_to is not None:
            await consumer.commit({tp: reset_to for tp in ends})
        return {tp: await consumer.committed(tp) or 0 for tp in ends}
    finally:
        await consumer.stop()


async def caught_up(settings: EvaluationSettings, *, timeout: float = 30.0) -> None:
    ends = await topic_ends(settings)

    async def at_the_ends() -> bool:
        return await group_offsets(settings) == ends

    await wait_until(
        at_the_ends, timeout=timeout, message=f"the group to reach {ends}", interval=0.2
    )


def redelivered_so_far() -> float:
    return REGISTRY.get_sample_value("sanwu_evaluation_events_redelivered_total") or 0.0


class TestRedelivery:
    async def test_reading_the_whole_topic_again_changes_nothing(
        self, evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        early, rest = mixed_workload(worlds.townships(2), rng=random.Random(7), count=80)
        await wait_applied(db, await post_workload(desk, db, early, rest))
        settings = evaluation.settings
        await caught_up(settings)
        before = await all_statuses(db)
        seen_before = redelivered_so_far()

        async with app_consumer_paused(evaluation):
            await group_offsets(settings, reset_to=0)
        await caught_up(settings)

        assert redelivered_so_far() - seen_before >= len(early) + len(rest)
        assert await all_statuses(db) == before  # versions and changed_at included


def crash_env(evaluation: Evaluation, **settings: str) -> dict[str, str]:
    overrides = {
        "SANWU_EVALUATION_SESSION_TIMEOUT_MS": "6000",
        "SANWU_EVALUATION_POLL_MS": "50",
        "SANWU_CLOCK_OFFSET_SECONDS": offset_seconds(evaluation.clock),
        "SANWU_LOG_JSON": "false",
    } | {f"SANWU_{name.upper()}": value for name, value in settings.items()}
    return os.environ | overrides


async def consume(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as output:
        return await asyncio.create_subprocess_exec(
            str(ROOT / ".venv" / "bin" / "sanwu"),
            "evaluation",
            "consume",
            "--no-relay",
            env=env,
            stdout=output,
            stderr=output,
        )


@pytest.mark.slow
@pytest.mark.faults  # kills its own consumer process, nothing shared
class TestKilledMidBatch:
    @pytest.mark.parametrize("point", ["before_commit", "after_commit"])
    async def test_after_restart_statuses_equal_a_rebuild(
        self,
        point: str,
        evaluation: Evaluation,
        desk: Desk,
        worlds: Worlds,
        db: Database,
        tmp_path: Path,
    ) -> None:
        group = f"killed-{point}-{uuid.uuid4().hex[:6]}"
        env = crash_env(
            evaluation,
            evaluation_group=group,
            evaluation_instance_id="killed",
            evaluation_batch_size="40",
        )
        log = tmp_path / "consumer.log"
        async with app_consumer_paused(evaluation):
            early, rest = mixed_workload(worlds.townships(3), rng=random.Random(11), count=200)
            ids = await desk.post(*early)
            for start in range(0, len(rest), 500):
                ids += await desk.post(*rest[start : start + 500])
            await wait_outbox_drained(db, timeout=20)

            crashing = await consume(env | {"SANWU_EVALUATION_CRASH_AT": point}, log)
            assert await asyncio.wait_for(crashing.wait(), 60) == CRASH_EXIT_CODE, log.read_text()
            applied_at_crash = await applied_count(db, ids)
            if point == "before_commit":
                assert applied_at_crash == 0  # the batch it died in was rolled back
            else:
                assert 0 < applied_at_crash < len(ids)  # committed, offsets not

            restarted = await consume(env, log)
            try:
                await wait_applied(db, ids, timeout=60)
            finally:
                restarted.send_signal(signal.SIGTERM)
                await asyncio.wait_for(restarted.wait(), 30)

        report = await rebuild(evaluation.settings, clock=evaluation.clock, swap=False)
        assert report.differences == [], log.read_text()[-3000:]


class TestTwoInstances:
    async def test_share_the_partitions_and_apply_each_event_once(
        self, evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        settings = evaluation.settings.model_copy(
            update={"evaluation_group": f"pair-{uuid.uuid4().hex[:6]}"}
        )
        applied: dict[str, list[UUID]] = {"a": [], "b": []}
        instances = {
            name: EvaluationConsumer(
                db=evaluation.worker.db,
                settings=settings,
                service=evaluation.worker.service,
                registry=evaluation.worker.registry,
                clock=evaluation.clock,
                on_batch=lambda batch, name=name: applied[name].extend(batch.event_ids),  # type: ignore[misc]
            )
            for name in applied
        }
        async with app_consumer_paused(evaluation):
            for instance in instances.values():
                instance.start()
            try:
                assignments = await both_assigned(instances, partitions=settings.event_partitions)
                spread = [*worlds.counties(3), *worlds.townships(2)]
                early, rest = mixed_workload(spread, rng=random.Random(5), count=300)
                ids = await post_workload(desk, db, early, rest)
                await wait_applied(db, ids)
                await caught_up(settings)
            finally:
                for instance in instances.values():
                    await instance.stop()

        everything = applied["a"] + applied["b"]
        assert len(everything) == len(set(everything)) == len(ids)
        assert {str(i) for i in everything} == set(ids)
        assert not assignments["a"] & assignments["b"]
        assert assignments["a"] | assignments["b"] == set(await topic_ends(settings))
        report = await rebuild(evaluation.settings, clock=evaluation.clock, swap=False)
        assert report.differences == []


async def both_assigned(
    instances: dict[str, EvaluationConsumer], *, partitions: int, timeout: float = 30.0
) -> dict[str, set[TopicPartition]]:
    """Until every partition belongs to exactly one instance and each has some."""

    def shared_out() -> dict[str, set[TopicPartition]] | None:
        assignments = {
            name: set(i.consumer.assignment()) if i.consumer else set()
            for name, i in instances.items()
        }
        owned = [tp for assigned in assignments.values() for tp in assigned]
        if all(assignments.values()) and len(owned) == len(set(owned)) == partitions:
            return assignments
        return None

    found = await poll(
        shared_out, timeout=timeout, message="both instances to own partitions", interval=0.1
    )
    return found


def incoming(payload: dict[str, Any], *, key: str) -> Incoming:
    """The payload as intake would publish it when accepted from `key`."""
    event = event_adapter.validate_python(payload)
    key_id = key.split("_")[1]
    return Incoming(EventRecord(event=event, accepted_at=system_now(), key_id=key_id))


class Overlap:
    """Two transactions applying batches at once, as two instances do while a rebalance moves
    a partition: the first holds its transaction open until released."""

    def __init__(self, evaluation: Evaluation, *, key: str) -> None:
        self.key = key
        self.db = evaluation.worker.db
        self.service = evaluation.worker.service
        self.clock = evaluation.clock
        self.release = asyncio.Event()
        self.holding = asyncio.Event()
        self.applied: dict[str, Applied] = {}

    async def apply(self, name: str, payloads: list[dict[str, Any]], *, hold: bool) -> None:
        async with self.db.session() as session:
            self.applied[name] = await self.service.apply(
                session, [incoming(p, key=self.key) for p in payloads], now=self.clock.now()
            )
            if hold:
                self.holding.set()
                await self.release.wait()

    async def blocked_by_another_transaction(self) -> bool:
        """Whether a backend of this database waits for a lock another one holds."""
        async with self.db.engine.connect() as connection:
            blocked = await connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND cardinality(pg_blocking_pids(pid)) > 0"
                )
            )
            return bool(blocked.scalar_one())

    async def run(self, first: list[dict[str, Any]], second: list[dict[str, Any]]) -> bool:
        """Apply both; True if the second had to wait for the first to commit."""
        holding = asyncio.create_task(self.apply("first", first, hold=True))
        await self.holding.wait()
        waiting = asyncio.create_task(self.apply("second", second, hold=False))

        async def done_or_blocked() -> bool:
            return waiting.done() or await self.blocked_by_another_transaction()

        await wait_until(done_or_blocked, timeout=10, message="the second batch to end or wait")
        waited = not waiting.done()
        self.release.set()
        await asyncio.gather(holding, waiting)
        return waited


@pytest.fixture
async def on_the_topic_too(desk: Desk, db: Database) -> AsyncIterator[list[dict[str, Any]]]:
    """Events a test applies straight through the service, posted afterwards as well: the topic
    stays the whole record, and later rebuilds still equal the live statuses."""
    applied: list[dict[str, Any]] = []
    yield applied
    if applied:
        await desk.post(*applied)
        await wait_outbox_drained(db, timeout=20)


class TestOverlappingTransactions:
    async def test_the_same_batch_twice_at_once_is_applied_once(
        self,
        evaluation: Evaluation,
        desk: Desk,
        worlds: Worlds,
        db: Database,
        on_the_topic_too: list[dict[str, Any]],
    ) -> None:
        world = worlds.township()
        batch = [
            events.visit(world.village, destination="city", headcount=9, occurred_at=world.at()),
            events.incident(world.villages[1], occurred_at=world.at()),
        ]
        on_the_topic_too.extend(batch)
        overlap = Overlap(evaluation, key=desk.key)

        assert await overlap.run(batch, batch)  # it waits for the rows the first one holds

        assert len(overlap.applied["first"].event_ids) == 2
        assert overlap.applied["second"].event_ids == []
        assert overlap.applied["second"].changes == []
        township = await status(db, world.township, world.period)
        assert township is not None and township["version"] == 1
        assert township["collective"] == 1 and township["incident"] == 1

    @pytest.mark.parametrize("first", ["target", "void"])
    async def test_a_void_and_its_target_at_once_leave_the_target_voided(
        self,
        first: str,
        evaluation: Evaluation,
        desk: Desk,
        worlds: Worlds,
        db: Database,
        on_the_topic_too: list[dict[str, Any]],
    ) -> None:
        world = worlds.township()
        target = events.visit(
            world.village, destination="city", headcount=9, occurred_at=world.at()
        )
        void = events.voided(target)
        batches = {"target": [target], "void": [void]}
        on_the_topic_too.extend([void, target])
        overlap = Overlap(evaluation, key=desk.key)

        second = batches["void" if first == "target" else "target"]
        assert await overlap.run(batches[first], second)

        for unit in (world.village, world.township):
            assert content(await status(db, unit, world.period))["three_no"] is True
