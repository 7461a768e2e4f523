"""The audit log under faults. Its consumer, a real `sanwu audit consume` process, is killed
while events and application steps flow: at the crash points just before and just after a
batch's transaction commits (its offsets not yet committed), and with SIGKILL at moments the
test does not choose, while it appends. Once it is back and the flow has reached it:

- the log holds exactly one leaf per history record (intake's journal, the applications'
  steps, the key audit), at positions 0 to n - 1, and the log's size is n;
- every checkpoint signed meanwhile is the root of the first leaves of the final log: what a
  crash interrupted was never half kept nor rewritten;
- each topic partition's records are in the log in the partition's order;
- a replay of both topics from their start by a new consumer group appends nothing: the same
  size and the same root;
- a log built from scratch in a fresh database by a new group from the same topics holds the
  same leaves, byte for byte;
- `sanwu audit verify` finds the tree, every signature and every history row as they must be.

These kill processes: `make test` runs them on a stack of their own (docs/operations.md,
"Tests")."""

import asyncio
import contextlib
import os
import random
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.audit import merkle
from services.audit.config import AuditSettings
from services.audit.consumers import history_consumers
from services.migrations import migrate_all
from shared import kafka
from shared.campaign import system_now
from shared.config import Settings
from shared.consumer import CRASH_EXIT_CODE
from shared.db import Database
from tests.support.audit import SIBLING_VILLAGE, VILLAGE, History, flowing_history, sanwu
from tests.support.events import visit
from tests.support.processes import BIN
from tests.support.stack import IsolatedStack, create_database, drop_database, read_topic
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(300)]

BATCHES = 30  # of events, posted while the consumer is killed and back
BATCH = 50
STEP_EVERY = 3  # batches
LOGGED_TIMEOUT = 120.0


# --- the flow ---------------------------------------------------------------------------------


@dataclass
class Flow:
    events: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)


async def flow(history: History, *, batches: int = BATCHES, pause: float = 0.2) -> Flow:
    """Batches of events posted to intake, and application steps recorded every few
    batches, until done."""
    flowed = Flow()
    for number in range(batches):
        units = (VILLAGE, SIBLING_VILLAGE)
        flowed.events += await history.post_events(
            [visit(units[i % 2], headcount=1 + i % 5) for i in range(BATCH)]
        )
        if number % STEP_EVERY == 0:
            flowed.steps.append(await history.add_step(reason=f"第{number}批材料不全"))
        await asyncio.sleep(pause)
    return flowed


@contextlib.asynccontextmanager
async def flowing(history: History) -> AsyncIterator[asyncio.Task[Flow]]:
    task = asyncio.create_task(flow(history))
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- the consumer process ---------------------------------------------------------------------


@dataclass
class Consumers:
    """`sanwu audit consume` processes of a test; any still running at its end is killed."""

    history: History
    log: Path
    started: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def start(self, **env: str) -> asyncio.subprocess.Process:
        with self.log.open("ab") as output:
            process = await asyncio.create_subprocess_exec(
                str(BIN / "sanwu"),
                "audit",
                "consume",
                env=os.environ
                | self.history.env
                | {"SANWU_LOG_JSON": "false", "SANWU_AUDIT_CHECKPOINT_INTERVAL_SECONDS": "0.2"}
                | env,
                stdout=output,
                stderr=output,
            )
        self.started.append(process)
        return process

    @staticmethod
    async def stop(process: asyncio.subprocess.Process) -> None:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)

    def kill_left(self) -> None:
        for process in self.started:
            if process.returncode is None:
                process.kill()


@contextlib.asynccontextmanager
async def consumers(history: History, log: Path) -> AsyncIterator[Consumers]:
    running = Consumers(history, log)
    try:
        yield running
    finally:
        running.kill_left()
        for process in running.started:
            with contextlib.suppress(ProcessLookupError):
                await process.wait()


# --- what the log holds -----------------------------------------------------------------------


async def fetch(history: History, sql: str) -> list[tuple[Any, ...]]:
    async with history.db.engine.connect() as connection:
        rows = await connection.exec_driver_sql(sql)
        return [tuple(row) for row in rows]


async def records(history: History) -> Counter[tuple[str, str]]:
    """Every history record of the database, as the (kind, id) of the leaf it must have."""
    found: Counter[tuple[str, str]] = Counter()
    for kind, sql in (
        ("event", "SELECT event_id::text FROM intake.journal"),
        ("application_step", "SELECT step_id::text FROM applications.step"),
        ("key_operation", "SELECT id::text FROM access.key_audit"),
    ):
        found.update((kind, str(record_id)) for (record_id,) in await fetch(history, sql))
    return found


async def leaves(db: Database) -> list[tuple[int, str, str, str]]:
    """(index, kind, record id, text) of every leaf, in order."""
    async with db.engine.connect() as connection:
        rows: Any = await connection.exec_driver_sql(
            "SELECT leaf_index, kind, record_id, body FROM audit.leaf ORDER BY leaf_index"
        )
        return [(index, kind, record_id, body) for index, kind, record_id, body in rows]


async def logged_from_topics(history: History) -> int:
    """Leaves of events and steps (not of key operations, which no topic carries)."""
    ((count,),) = await fetch(
        history, "SELECT count(*) FROM audit.leaf WHERE kind <> 'key_operation'"
    )
    return int(count)


async def every_record_logged(history: History) -> None:
    """Every record a leaf, and a checkpoint signed of them all (checkpoints follow appends by
    up to an interval; `verify` checks rows against the leaves a checkpoint covers)."""

    async def logged_and_signed() -> bool:
        ((size,),) = await fetch(history, "SELECT count(*) FROM audit.leaf")
        ((signed,),) = await fetch(history, "SELECT coalesce(max(size), 0) FROM audit.checkpoint")
        return int(signed) == int(size) >= sum((await records(history)).values())

    await wait_until(
        logged_and_signed,
        timeout=LOGGED_TIMEOUT,
        message="every history record in the log, under a checkpoint",
    )


def root_of(logged: list[tuple[int, str, str, str]], size: int | None = None) -> bytes:
    return merkle.Tree.of(text.encode() for _, _, _, text in logged).root(size)


async def the_log_holds_each_record_once(history: History, flowed: Flow) -> None:
    logged = await leaves(history.db)
    expected = await records(history)
    assert Counter((kind, record_id) for _, kind, record_id, _ in logged) == expected
    assert {("event", e) for e in flowed.events} <= expected.keys()
    assert {("application_step", str(s)) for s in flowed.steps} <= expected.keys()
    assert [index for index, *_ in logged] == list(range(len(logged)))
    ((size,),) = await fetch(history, "SELECT size FROM audit.head")
    assert size == len(logged)
    checkpoints = await fetch(history, "SELECT size, root_hash FROM audit.checkpoint")
    assert checkpoints
    tree = merkle.Tree.of(text.encode() for _, _, _, text in logged)
    for checkpoint_size, root in checkpoints:
        assert tree.root(checkpoint_size) == bytes(root), f"the checkpoint of {checkpoint_size}"


async def partitions_kept_in_order(history: History) -> None:
    """Each partition's records appear in the log in the partition's order."""
    position = {(kind, record_id): index for index, kind, record_id, _ in await leaves(history.db)}
    settings = history.settings
    for topic, kind, id_of in (
        (settings.events_topic, "event", lambda value: value["event"]["event_id"]),
        (settings.application_topic, "application_step", lambda value: str(value["step_id"])),
    ):
        by_partition: dict[int, list[int]] = {}
        for partition, _, value, _ in await read_topic(settings, topic, timeout=30):
            record_id = id_of(orjson.loads(value))
            by_partition.setdefault(partition, []).append(position[kind, record_id])
        assert by_partition
        for partition, positions in by_partition.items():
            assert positions == sorted(positions), f"{topic} partition {partition}"


# --- replays ----------------------------------------------------------------------------------


def replaying_settings(history: History, *, database_url: str) -> AuditSettings:
    return AuditSettings(
        environment="test",
        database_url=database_url,
        topic_prefix=history.settings.topic_prefix,
        kafka_bootstrap_servers=history.settings.kafka_bootstrap_servers,
        audit_consumer_group=f"replay-{uuid.uuid4().hex[:8]}",
    )


async def replay(history: History, settings: AuditSettings) -> None:
    """Both topics read from their start by a new consumer group into `settings`' database,
    until the group has committed their ends."""
    db = Database.from_settings(settings, pool_size=4)
    consumers = history_consumers(
        db=db, settings=settings, clock=system_now, on_append=lambda: None
    )
    admin = kafka.admin(settings)
    await admin.start()
    try:
        for consumer in consumers.values():
            consumer.start()

        async def caught_up() -> bool:
            for consumer in consumers.values():
                ends = await kafka.end_offsets(settings, consumer.topic)
                committed = await kafka.committed_offsets(admin, consumer.group_id) or {}
                if any(committed.get(tp, 0) < end for tp, end in ends.items() if end):
                    return False
            return True

        await wait_until(caught_up, timeout=90, message="the replay to reach the topics' ends")
    finally:
        await asyncio.gather(*(consumer.stop() for consumer in consumers.values()))
        await admin.close()
        await db.dispose()


async def a_replay_appends_nothing(history: History) -> None:
    before = await leaves(history.db)
    await replay(history, replaying_settings(history, database_url=history.stack.database_url))
    after = await leaves(history.db)
    assert len(after) == len(before)
    assert root_of(after) == root_of(before)


async def a_log_from_scratch_holds_the_same_leaves(history: History) -> None:
    database = f"{history.stack.database}_scratch"
    await create_database(database)
    url = history.stack.database_url.rsplit("/", 1)[0] + f"/{database}"
    try:
        await migrate_all(Settings(environment="test", database_url=url))
        await replay(history, replaying_settings(history, database_url=url))
        scratch = Database.from_settings(Settings(environment="test", database_url=url))
        try:
            rebuilt = await leaves(scratch)
        finally:
            await scratch.dispose()
    finally:
        await drop_database(database)
    from_topics = [
        (kind, record_id, text)
        for _, kind, record_id, text in await leaves(history.db)
        if kind != "key_operation"
    ]
    assert Counter((kind, record_id, text) for _, kind, record_id, text in rebuilt) == Counter(
        from_topics
    )


async def checked(history: History, flowed: Flow) -> None:
    await the_log_holds_each_record_once(history, flowed)
    await partitions_kept_in_order(history)
    await a_replay_appends_nothing(history)
    await a_log_from_scratch_holds_the_same_leaves(history)
    verified = await sanwu("audit", "verify", env=history.env)
    assert verified.code == 0, verified.stdout + verified.stderr
    assert "(0 not in the log yet)" in verified.stderr, verified.stderr


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
async def test_the_consumer_killed_around_its_commit_leaves_one_leaf_per_record(
    point: str, stack: IsolatedStack, tmp_path: Path
) -> None:
    async with (
        flowing_history() as history,
        consumers(history, tmp_path / "consumer.log") as processes,
        flowing(history) as flowed,
    ):
        crashing = await processes.start(SANWU_AUDIT_CRASH_AT=point)
        code = await asyncio.wait_for(crashing.wait(), 90)
        assert code == CRASH_EXIT_CODE, processes.log.read_text()[-3000:]
        at_crash = await logged_from_topics(history)
        if point == "before_commit":
            assert at_crash == 0  # the batch it died in was rolled back
        else:
            assert at_crash > 0  # committed, its offsets not: read again after the restart
        restarted = await processes.start()
        try:
            done = await flowed
            await every_record_logged(history)
        finally:
            await processes.stop(restarted)
        await checked(history, done)


async def test_the_consumer_killed_at_any_moment_while_it_appends_loses_and_doubles_nothing(
    stack: IsolatedStack, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    async with (
        flowing_history() as history,
        consumers(history, tmp_path / "consumer.log") as processes,
        flowing(history) as flowed,
    ):
        for _ in range(3):
            process = await processes.start()
            since = await logged_from_topics(history)

            async def appending(since: int = since) -> bool:
                return flowed.done() or await logged_from_topics(history) > since

            await wait_until(appending, timeout=60, message=f"the consumer to append (seed {seed})")
            await asyncio.sleep(rng.uniform(0, 0.3))
            process.send_signal(signal.SIGKILL)
            await process.wait()
        restarted = await processes.start()
        try:
            done = await flowed
            await every_record_logged(history)
        finally:
            await processes.stop(restarted)
        await checked(history, done)
