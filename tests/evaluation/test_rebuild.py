"""`sanwu evaluation rebuild`: every status recomputed from the topic equals the live one, field
by field, and so does every correction's state (refused ones included); what differs is
repaired with the next version and published; the swapped-in tables are the migrated ones; the
live consumer carries on after a swap. Reader processes: any number of them rebuilds the same
tables, one that fails or dies fails the rebuild and changes nothing, and a message they read
that reaches the topic again before the swap is applied once."""

import asyncio
import json
import os
import random
import re
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.evaluation.config import EvaluationSettings
from services.evaluation.live.statuses import status_of
from services.evaluation.rebuild.readers import ReaderFailed
from services.evaluation.rebuild.repository import RebuildRepository
from services.evaluation.rebuild.run import RebuildRunning, rebuild
from services.evaluation.rebuild.warnings import WarningRebuild
from shared import kafka
from shared.access.models import Role
from shared.db import Database
from shared.locks import LockName, lock_key
from shared.status import UnitStatus
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import (
    Desk,
    Worlds,
    all_statuses,
    content,
    create_key,
    mixed_workload,
    offset_seconds,
    post_workload,
    read_status_topic,
    status,
    wait_applied,
)
from tests.support import events
from tests.support.reference import CRITERIA

ROOT = Path(__file__).resolve().parents[2]
CORRECTIONS = ("event_voided", "event_reattributed")
RUNNING = lock_key(LockName.evaluation_rebuild)


@pytest.fixture(scope="module")
async def live_run(evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database) -> list[str]:
    """A mixed workload, with corrections the rules refuse: from a desk outside their targets'
    scope, of other corrections (both sent before their targets, so intake takes them), and
    re-attributions of voided events."""
    rng = random.Random(3)
    early, rest = mixed_workload(
        [worlds.township(), worlds.township(), worlds.county()], rng=rng, count=300
    )
    outside = worlds.township()
    outsider = Desk(desk.intake, await create_key(db, role=Role.desk, scope=outside.township))
    counted = [e for e in rest if e["type"] not in CORRECTIONS]
    refused = [
        events.voided(target) | {"unit_code": outside.village} for target in counted[:10]
    ] + [
        events.reattributed(target, outside.villages[1]) | {"unit_code": outside.village}
        for target in counted[10:20]
    ]
    ids = await outsider.post(*refused)
    refused += [events.voided(c) for c in early[:5]]
    ids += await desk.post(*refused[-5:])
    ids += await post_workload(desk, db, early, rest)
    voided = [c for c in early + rest if c["type"] == "event_voided"][:10]
    after_void = [
        events.reattributed({"event_id": c["target_event_id"], "unit_code": c["unit_code"]}, v)
        for c, v in zip(voided, outside.villages, strict=False)
    ]
    ids += await desk.post(*after_void)
    await wait_applied(db, ids)
    states = await correction_states(db)
    assert all(states[c["event_id"]][0] == "refused" for c in refused + after_void)
    return ids


async def correction_states(db: Database) -> dict[str, tuple[str, str | None]]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT event_id::text, state, reason FROM evaluation.correction")
        )
        return {row[0]: (row[1], row[2]) for row in rows}


async def schema_shape(db: Database) -> dict[str, list[tuple[str, ...]]]:
    async with db.engine.connect() as connection:
        columns = await connection.execute(
            sa.text(
                """
                SELECT table_name, column_name, data_type, is_nullable, column_default
                FROM information_schema.columns WHERE table_schema = 'evaluation'
                ORDER BY table_name, ordinal_position
                """
            )
        )
        indexes = await connection.execute(
            sa.text(
                "SELECT tablename, indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = 'evaluation' ORDER BY indexname"
            )
        )
        options = await connection.execute(
            sa.text(
                "SELECT c.relname, c.reloptions FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'evaluation' AND c.relkind = 'r' ORDER BY c.relname"
            )
        )
        return {
            "columns": [tuple(r) for r in columns],
            "indexes": [tuple(r) for r in indexes],
            "options": [(r[0], str(r[1])) for r in options],  # autovacuum on again, say
        }


class TestRebuild:
    async def test_after_a_live_run_equals_the_live_statuses_field_by_field(
        self, evaluation: Evaluation, live_run: list[str], db: Database
    ) -> None:
        live = await all_statuses(db)
        states = await correction_states(db)

        report = await rebuild(evaluation.settings, clock=evaluation.clock)

        assert report.swapped
        assert report.differences == []
        assert report.events >= len(live_run)
        assert await all_statuses(db) == live  # version and changed_at included
        assert await correction_states(db) == states  # refused ones with the same reason

    async def test_dry_run_lists_what_differs_and_changes_nothing(
        self, evaluation: Evaluation, live_run: list[str], db: Database
    ) -> None:
        key = next(iter(await all_statuses(db)))
        await tamper(db, key)
        tampered = await all_statuses(db)

        report = await rebuild(evaluation.settings, clock=evaluation.clock, swap=False)

        assert report.differences == [key]
        assert await all_statuses(db) == tampered
        await rebuild(evaluation.settings, clock=evaluation.clock)  # repair for the next tests

    async def test_a_status_that_differs_is_repaired_with_the_next_version_and_published(
        self, evaluation: Evaluation, live_run: list[str], db: Database
    ) -> None:
        before = await all_statuses(db)
        key = sorted(before)[len(before) // 2]
        await tamper(db, key)

        report = await rebuild(evaluation.settings, clock=evaluation.clock)

        after = await all_statuses(db)
        assert report.differences == [key]
        assert content(after[key]) == content(before[key])
        assert after[key]["version"] == before[key]["version"] + 1
        assert {k: v for k, v in after.items() if k != key} == {
            k: v for k, v in before.items() if k != key
        }
        wanted = f"{key[0]}:{key[1]}".encode()
        for _ in range(100):
            published = [
                m for m in await read_status_topic(evaluation.settings) if m["key"] == wanted
            ]
            if published and published[-1]["value"]["version"] == after[key]["version"]:
                break
            await asyncio.sleep(0.1)
        assert published[-1]["value"]["version"] == after[key]["version"]
        # As the database wrote it, field by field.
        assert UnitStatus.model_validate(published[-1]["value"]) == status_of(after[key])
        row = after[key]
        assert published[-1]["value"] == {
            "schema_version": 1,
            "unit_code": key[0],
            "period": key[1],
            "three_no": row["three_no"],
            "counts": {c: row[c] for c in CRITERIA},
            "people": {c: row[f"{c}_people"] for c in CRITERIA},
            "counting_event_ids": [str(i) for i in row["counting_event_ids"]],
            "changed_at": published[-1]["value"]["changed_at"],
            "version": row["version"],
        }
        assert datetime.fromisoformat(published[-1]["value"]["changed_at"]) == row["changed_at"]

    async def test_swapped_in_tables_are_the_migrated_ones(
        self, evaluation: Evaluation, live_run: list[str], db: Database
    ) -> None:
        migrated = await schema_shape(db)
        await rebuild(evaluation.settings, clock=evaluation.clock)
        assert await schema_shape(db) == migrated

    async def test_the_live_consumer_carries_on_after_a_swap(
        self, evaluation: Evaluation, live_run: list[str], desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        await rebuild(evaluation.settings, clock=evaluation.clock)
        world = worlds.township()
        event = events.visit(
            world.village, destination="county", headcount=5, occurred_at=world.at()
        )

        await desk.post(event)
        await wait_applied(db, [event["event_id"]])

        stored = await status(db, world.village, world.period)
        assert stored is not None and stored["counting_event_ids"] == [event["event_id"]]

    async def test_command_shows_progress_and_events_per_second(
        self, evaluation: Evaluation, live_run: list[str], db: Database
    ) -> None:
        live = await all_statuses(db)
        command = await asyncio.create_subprocess_exec(
            str(ROOT / ".venv" / "bin" / "sanwu"),
            "evaluation",
            "rebuild",
            "--progress",
            env=os.environ | {"SANWU_CLOCK_OFFSET_SECONDS": offset_seconds(evaluation.clock)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(command.communicate(), 60)

        assert command.returncode == 0, stderr.decode()
        output = stderr.decode()
        assert "events/s" in output and "0 changed" in output, output
        # The bar ends complete: every message of the topic read, out of the total it knew.
        bar = re.search(r"messages\b.*?\b(\d+)/(\d+)", output)
        assert bar is not None and bar[1] == bar[2] and int(bar[1]) > 0, output
        assert await all_statuses(db) == live


class TestOneAtATime:
    async def test_a_second_rebuild_is_refused_while_one_runs(
        self, evaluation: Evaluation, db: Database
    ) -> None:
        live = await all_statuses(db)
        async with db.engine.connect() as connection:
            await connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": RUNNING})
            try:
                with pytest.raises(RebuildRunning):
                    await rebuild(evaluation.settings, clock=evaluation.clock)
            finally:
                await connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": RUNNING}
                )
        assert await all_statuses(db) == live


async def tamper(db: Database, key: tuple[str, str]) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(
            sa.text(
                "UPDATE evaluation.status SET collective = collective + 7, three_no = false "
                "WHERE unit_code = :unit AND period = :period"
            ),
            {"unit": key[0], "period": key[1]},
        )


def readers(evaluation: Evaluation, count: int) -> EvaluationSettings:
    return evaluation.settings.model_copy(update={"rebuild_readers": count})


async def evaluation_tables(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every rebuilt table's rows and the warnings, in a fixed order."""
    tables = {}
    async with db.engine.connect() as connection:
        for table in ("event", "correction", "effect", "status", "indicators", "warning"):
            rows = await connection.execute(
                sa.text(f"SELECT * FROM evaluation.{table} ORDER BY 1, 2")
            )
            tables[table] = [tuple(map(str, row)) for row in rows]
    return tables


async def staging_schemas(db: Database) -> list[str]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'evaluation_rebuild%'")
        )
        return [row[0] for row in rows]


class TestReaderProcesses:
    async def test_one_reader_and_several_rebuild_the_same_tables(
        self, evaluation: Evaluation, live_run: list[str], db: Database
    ) -> None:
        one = await rebuild(readers(evaluation, 1), clock=evaluation.clock)
        tables = await evaluation_tables(db)

        several = await rebuild(readers(evaluation, 4), clock=evaluation.clock)

        assert (several.messages, several.events, several.skipped) == (
            one.messages,
            one.events,
            one.skipped,
        )
        assert several.differences == one.differences == []
        assert await evaluation_tables(db) == tables

    @pytest.mark.parametrize("fault", ["raises", "is killed"])
    async def test_a_reader_that_fails_fails_the_rebuild_and_changes_nothing(
        self,
        fault: str,
        evaluation: Evaluation,
        live_run: list[str],
        db: Database,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        tables = await evaluation_tables(db)
        rebuilding = os.getpid()

        async def copy_then_fail(self: RebuildRepository, table: str, **rows: Any) -> None:
            if os.getpid() != rebuilding and table == "effect":  # in a reader process
                if fault == "is killed":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError("no space left on device")

        monkeypatch.setattr(RebuildRepository, "copy", copy_then_fail)
        with pytest.raises(ReaderFailed) as failed:
            await rebuild(readers(evaluation, 2), clock=evaluation.clock)

        reason = "exit code -9" if fault == "is killed" else "RuntimeError: no space left"
        assert re.search(r"the reader of partitions \d+(, \d+)* failed: ", str(failed.value))
        assert reason in str(failed.value)
        assert await evaluation_tables(db) == tables
        assert await staging_schemas(db) == []
        monkeypatch.undo()
        report = await rebuild(readers(evaluation, 2), clock=evaluation.clock)  # not locked out
        assert report.swapped and report.differences == []

    async def test_a_message_read_by_a_reader_that_comes_again_before_the_swap_is_applied_once(
        self,
        evaluation: Evaluation,
        live_run: list[str],
        db: Database,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        tables = await evaluation_tables(db)
        before = await rebuild(readers(evaluation, 2), clock=evaluation.clock)
        visit = await first_visit_message(evaluation.settings)
        find = WarningRebuild.find

        async def find_then_repeat(self: WarningRebuild, connection: Any) -> None:
            await find(self, connection)  # the readers are done: the repeat is in the tail
            await publish_again(evaluation.settings, visit)

        monkeypatch.setattr(WarningRebuild, "find", find_then_repeat)
        report = await rebuild(readers(evaluation, 2), clock=evaluation.clock)

        assert report.messages == before.messages + 1
        assert report.events == before.events
        assert report.differences == []
        assert await evaluation_tables(db) == tables


async def first_visit_message(settings: EvaluationSettings) -> Any:
    async for records in kafka.read_to_end(settings, settings.events_topic):
        for record in records:
            if json.loads(record.value)["event"]["type"] == "petition_visit":
                return record
    raise AssertionError("no visit on the topic")


async def publish_again(settings: EvaluationSettings, record: Any) -> None:
    """As the relay does when it publishes a row again after a fault: same key, same bytes."""
    producer = kafka.producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.events_topic, record.value, key=record.key, headers=list(record.headers)
        )
    finally:
        await producer.stop()
