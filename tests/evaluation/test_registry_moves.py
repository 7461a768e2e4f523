"""After `sanwu units load` moves units (a village to another township or county, townships
merged), a village's past events count against its new ancestors and no longer against the old
ones, without a rebuild: once per registry version, with batches running, and also for a load
made while the evaluation was down.

Every test moves units of its own in a province of its own (52), so no other test's figures
move."""

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from services.evaluation.config import EvaluationSettings
from services.evaluation.main import EvaluationWorker, create_app
from services.evaluation.rebuild.run import rebuild
from shared.db import Database
from shared.registry.loader import load_file
from shared.status import ROLLING
from tests.conftest import serve
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import Desk, content, status, wait_applied
from tests.support import events
from tests.support.waiting import wait_until

PROVINCE, CITY = "520000000000", "520100000000"
HEADER = "code,name,level,parent_code\n"
PERIOD = "2023"
WHEN = "2023-06-03T09:30:00+08:00"


def county(number: int) -> str:
    return f"5201{number:02d}000000"


def township(county_code: str, number: int) -> str:
    return f"{county_code[:6]}{100 + number:03d}000"


def village(township_code: str, number: int) -> str:
    return f"{township_code[:9]}{200 + number:03d}"


def rows(tree: dict[str, list[str]], parent_of: dict[str, str]) -> str:
    """CSV lines for the counties, townships and villages of `tree` (township: villages)."""
    lines = []
    for township_code, villages in tree.items():
        county_code = parent_of[township_code]
        lines.append(f"{county_code},县{county_code[4:6]},county,{CITY}")
        lines.append(f"{township_code},镇{township_code[6:9]},township,{county_code}")
        lines += [f"{v},村{v[9:]},village,{township_code}" for v in villages]
    return "\n".join(dict.fromkeys(lines)) + "\n"


async def load(db: Database, tmp_path: Path, text: str) -> None:
    path = tmp_path / f"units-{random.getrandbits(32)}.csv"
    path.write_text(
        HEADER + f"{PROVINCE},测试省,province,\n{CITY},测试市,city,{PROVINCE}\n" + text,
        encoding="utf-8",
    )
    async with db.engine.begin() as connection:
        await load_file(connection, path)


async def load_tree(db: Database, tmp_path: Path, tree: dict[str, list[str]]) -> None:
    await load(db, tmp_path, rows(tree, {t: t[:6] + "000000" for t in tree}))


async def followed(evaluation: Evaluation, db: Database) -> None:
    """Until the evaluation follows the registry version now loaded (its own loop does it)."""

    async def caught_up() -> bool:
        async with db.engine.connect() as connection:
            found = await connection.execute(
                sa.text(
                    "SELECT (SELECT version FROM registry.meta) = "
                    "(SELECT version FROM evaluation.registry_followed)"
                )
            )
            return bool(found.scalar())

    await wait_until(caught_up, timeout=15, message="the evaluation to follow the registry")


async def effect_units(db: Database, event_id: str) -> set[str]:
    async with db.engine.connect() as connection:
        found = await connection.execute(
            sa.text("SELECT unit_code FROM evaluation.effect WHERE event_id::text = :id"),
            {"id": event_id},
        )
        return {row[0] for row in found}


def collective(unit: str, *, headcount: int = 60, occurred_at: str = WHEN) -> dict[str, Any]:
    """Counts against the village, its township and (over 50) its county."""
    return events.visit(unit, destination="city", headcount=headcount, occurred_at=occurred_at)


def marked(row: dict[str, Any] | None, *event_ids: str) -> bool:
    return row is not None and not row["three_no"] and row["counting_event_ids"] == list(event_ids)


def clean(row: dict[str, Any] | None) -> bool:
    return row is None or (row["three_no"] and row["counting_event_ids"] == [])


class TestMoves:
    async def test_a_village_moved_to_another_county_counts_there_and_its_old_ancestors_clear(
        self, evaluation: Evaluation, desk: Desk, db: Database, tmp_path: Path
    ) -> None:
        old_county, new_county = county(1), county(2)
        old_township, new_township = township(old_county, 0), township(new_county, 0)
        moving, staying = village(old_township, 1), village(old_township, 2)
        await load_tree(db, tmp_path, {old_township: [moving, staying], new_township: []})
        recent = (evaluation.clock.now() - timedelta(days=10)).isoformat()
        event, lately = collective(moving), collective(moving, occurred_at=recent)
        await desk.post(event, lately)
        await wait_applied(db, [event["event_id"], lately["event_id"]])
        await followed(evaluation, db)
        before = {u: await status(db, u, PERIOD) for u in (old_township, old_county, moving)}
        assert marked(before[old_township], event["event_id"])

        await load(db, tmp_path, f"{moving},村迁,village,{new_township}\n")
        await followed(evaluation, db)

        assert await effect_units(db, event["event_id"]) == {moving, new_township, new_county}
        for unit in (old_township, old_county):
            after = await status(db, unit, PERIOD)
            assert clean(after), unit
            assert after is not None and after["version"] == before[unit]["version"] + 1
        for unit in (new_township, new_county):
            assert marked(await status(db, unit, PERIOD), event["event_id"]), unit
            assert marked(await status(db, unit, ROLLING), lately["event_id"]), unit
        assert clean(await status(db, old_township, ROLLING))
        assert await status(db, moving, PERIOD) == before[moving]  # the village itself: as it was
        assert clean(await status(db, staying, PERIOD))

    async def test_merged_townships_the_emptied_one_keeps_only_its_own_events(
        self, evaluation: Evaluation, desk: Desk, db: Database, tmp_path: Path
    ) -> None:
        county_code = county(3)
        merged, into = township(county_code, 0), township(county_code, 1)
        first, second, third = village(merged, 1), village(merged, 2), village(into, 1)
        await load_tree(db, tmp_path, {merged: [first, second], into: [third]})
        of_first, of_third = collective(first, headcount=6), collective(third, headcount=6)
        own = events.incident(merged, occurred_at=WHEN)  # a matter of the township itself
        await desk.post(of_first, of_third, own)
        await wait_applied(db, [of_first["event_id"], of_third["event_id"], own["event_id"]])
        await followed(evaluation, db)

        await load(db, tmp_path, f"{first},村一,village,{into}\n{second},村二,village,{into}\n")
        await followed(evaluation, db)

        assert marked(await status(db, merged, PERIOD), own["event_id"])
        into_status = await status(db, into, PERIOD)
        assert into_status is not None and not into_status["three_no"]
        assert sorted(into_status["counting_event_ids"]) == sorted(
            [of_first["event_id"], of_third["event_id"]]
        )
        assert marked(await status(db, first, PERIOD), of_first["event_id"])

    async def test_a_version_is_followed_once(
        self, evaluation: Evaluation, desk: Desk, db: Database, tmp_path: Path
    ) -> None:
        county_code = county(4)
        here, there = township(county_code, 0), township(county_code, 1)
        moving = village(here, 1)
        await load_tree(db, tmp_path, {here: [moving], there: []})
        event = collective(moving, headcount=6)
        await desk.post(event)
        await wait_applied(db, [event["event_id"]])
        await followed(evaluation, db)

        await load(db, tmp_path, f"{moving},村迁,village,{there}\n")
        await followed(evaluation, db)
        after = {u: await status(db, u, PERIOD) for u in (here, there, moving)}

        assert await evaluation.worker.expiry.follow_registry() == []
        assert {u: await status(db, u, PERIOD) for u in (here, there, moving)} == after
        assert after[there] is not None and after[there]["version"] == 1

    async def test_warnings_follow_a_moved_village_to_its_new_chain(
        self, evaluation: Evaluation, desk: Desk, db: Database, tmp_path: Path
    ) -> None:
        old_county, new_county = county(7), county(8)
        old_township, new_township = township(old_county, 0), township(new_county, 0)
        moving = village(old_township, 1)
        await load_tree(db, tmp_path, {old_township: [moving], new_township: []})
        near = events.visit(moving, destination="city", headcount=4, occurred_at=WHEN)
        await desk.post(near)
        await wait_applied(db, [near["event_id"]])
        await followed(evaluation, db)
        assert await near_threshold_raised(db, near["event_id"]) == {moving, old_township}

        await load(db, tmp_path, f"{moving},村迁,village,{new_township}\n")
        await followed(evaluation, db)

        assert await near_threshold_raised(db, near["event_id"]) == {moving, new_township}


async def near_threshold_raised(db: Database, event_id: str) -> set[str]:
    """The units with a near-threshold warning naming the event, not cleared."""
    async with db.engine.connect() as connection:
        found = await connection.execute(
            sa.text(
                "SELECT unit_code FROM evaluation.warning WHERE kind = 'near_threshold' "
                "AND cleared_at IS NULL AND CAST(:id AS uuid) = ANY(event_ids)"
            ),
            {"id": event_id},
        )
        return {row[0] for row in found}


class TestWhileRunning:
    async def test_events_applied_while_units_move_end_where_a_rebuild_puts_them(
        self, evaluation: Evaluation, desk: Desk, db: Database, tmp_path: Path
    ) -> None:
        county_code = county(5)
        here, there = township(county_code, 0), township(county_code, 1)
        villages = [village(here, n) for n in range(1, 5)]
        await load_tree(db, tmp_path, {here: villages, there: []})
        rng = random.Random(10)
        posted: list[str] = []

        async def post_all() -> None:
            for _ in range(12):
                batch = [collective(rng.choice(villages), headcount=6) for _ in range(10)]
                posted.extend(await desk.post(*batch))
                await asyncio.sleep(0.1)

        async def move_back_and_forth() -> None:
            for parent in (there, here, there):
                moved = "".join(f"{v},村{v[9:]},village,{parent}\n" for v in villages[:2])
                await load(db, tmp_path, moved)
                await asyncio.sleep(0.4)

        await asyncio.gather(post_all(), move_back_and_forth())
        await wait_applied(db, posted)
        await followed(evaluation, db)

        report = await rebuild(evaluation.settings, clock=evaluation.clock, swap=False)

        ours = [key for key in report.differences if key[0].startswith("5201")]
        assert ours == []
        there_status = content(await status(db, there, PERIOD))
        assert there_status["collective"] > 0 and not there_status["three_no"]


@contextlib.asynccontextmanager
async def upkeep_stopped(worker: EvaluationWorker) -> AsyncIterator[None]:
    """The evaluation's loop that follows the registry is not running (as if it were down);
    it starts again afterwards."""
    await worker.tasks.stop_one("evaluation-upkeep")
    try:
        yield
    finally:
        worker.tasks.start("evaluation-upkeep", worker.expiry.run())


class TestRestart:
    async def test_a_move_loaded_while_the_evaluation_was_down_is_followed_at_start(
        self, evaluation: Evaluation, desk: Desk, db: Database, tmp_path: Path
    ) -> None:
        county_code = county(6)
        here, there = township(county_code, 0), township(county_code, 1)
        moving = village(here, 1)
        await load_tree(db, tmp_path, {here: [moving], there: []})
        event = collective(moving, headcount=6)
        await desk.post(event)
        await wait_applied(db, [event["event_id"]])
        await followed(evaluation, db)

        async with upkeep_stopped(evaluation.worker):
            await load(db, tmp_path, f"{moving},村迁,village,{there}\n")
            await asyncio.sleep(1.5)
            assert marked(await status(db, here, PERIOD), event["event_id"])  # not followed

            # An evaluation starting now (without a consumer: the running one keeps its group).
            starting = EvaluationSettings(evaluation_run_consumer=False, status_relay_enabled=False)
            restarted = create_app(starting, clock=evaluation.clock)
            async with serve(restarted, "http://evaluation-restarted"):
                await followed(evaluation, db)

        assert clean(await status(db, here, PERIOD))
        assert marked(await status(db, there, PERIOD), event["event_id"])
