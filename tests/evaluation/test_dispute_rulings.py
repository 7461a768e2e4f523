"""Disputes as evaluation follows them from the disputes topic: an upheld ruling changes the
counts as the deciding bureau's correction would, exactly once; a reversal on review undoes it;
a ruling that comes before its event still applies; an old step delivered again changes
nothing; a consumer killed around its commit changes nothing; and a rebuild gives the same
statuses, the rulings' effects included."""

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from services.evaluation.consumers import CRASH_EXIT_CODE
from services.evaluation.rebuild.run import rebuild
from shared import kafka
from shared.db import Database
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import Desk, Worlds, status, wait_applied
from tests.evaluation.test_exactly_once import consume, crash_env
from tests.support import events
from tests.support.dispute_steps import DisputeStory, publish
from tests.support.waiting import wait_until

UPHELD_SQL = (
    "SELECT count(*) FROM evaluation.dispute"
    " WHERE dispute_id::text = ANY(:ids) AND outcome IS NOT NULL"
)
VERSIONS_SQL = "SELECT sum(version) FROM evaluation.dispute WHERE dispute_id::text = ANY(:ids)"


def eight_to_the_city(unit_code: str, at: str) -> dict[str, Any]:
    return events.visit(unit_code, destination="city", headcount=8, occurred_at=at)


async def three_no(db: Database, unit_code: str, period: str) -> bool:
    found = await status(db, unit_code, period)
    return found is None or bool(found["three_no"])


async def until(db: Database, unit_code: str, period: str, *, clean: bool) -> dict[str, Any]:
    async def reached() -> bool:
        return await three_no(db, unit_code, period) is clean

    await wait_until(reached, timeout=30, message=f"{unit_code} to be three-no: {clean}")
    found = await status(db, unit_code, period)
    assert found is not None
    return found


async def kept_versions(db: Database, dispute_ids: list[str]) -> int:
    async with db.engine.connect() as connection:
        found = await connection.execute(sa.text(VERSIONS_SQL), {"ids": dispute_ids})
        return int(found.scalar_one() or 0)


async def upheld(db: Database, dispute_ids: list[str]) -> int:
    async with db.engine.connect() as connection:
        found = await connection.execute(sa.text(UPHELD_SQL), {"ids": dispute_ids})
        return int(found.scalar_one())


async def kept(db: Database, dispute_id: str) -> bool:
    return await kept_versions(db, [dispute_id]) > 0


async def test_an_upheld_void_counts_once_and_its_reversal_on_review_undoes_it(
    evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
) -> None:
    world = worlds.township()
    (event_id,) = await desk.post(eight_to_the_city(world.village, world.at()))
    await wait_applied(db, [event_id])
    marked = await until(db, world.village, world.period, clean=False)
    story = DisputeStory(event_id, world.village)

    await publish(evaluation.settings, story.filed(), story.decided("uphold_void"))
    voided = await until(db, world.village, world.period, clean=True)
    assert voided["version"] == marked["version"] + 1
    assert voided["counting_event_ids"] == []

    await publish(evaluation.settings, story.review_requested(), story.reviewed("reject"))
    restored = await until(db, world.village, world.period, clean=False)
    assert restored["version"] == marked["version"] + 2
    assert restored["counting_event_ids"] == [event_id]
    assert await three_no(db, world.township, world.period) is False


async def test_an_upheld_reattribution_moves_the_count_to_the_new_village(
    evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
) -> None:
    world = worlds.township()
    first, second = world.villages[:2]
    (event_id,) = await desk.post(eight_to_the_city(first, world.at()))
    await wait_applied(db, [event_id])
    await until(db, first, world.period, clean=False)
    story = DisputeStory(event_id, first)

    await publish(
        evaluation.settings, story.filed(), story.decided("uphold_reattribute", new_unit=second)
    )

    await until(db, first, world.period, clean=True)
    moved = await until(db, second, world.period, clean=False)
    assert moved["counting_event_ids"] == [event_id]


async def test_old_steps_delivered_again_change_nothing(
    evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
) -> None:
    world = worlds.township()
    (event_id,) = await desk.post(eight_to_the_city(world.village, world.at()))
    await wait_applied(db, [event_id])
    story = DisputeStory(event_id, world.village)
    filed, decided = story.filed(), story.decided("uphold_void")
    await publish(evaluation.settings, filed, decided)
    settled = await until(db, world.village, world.period, clean=True)

    await publish(evaluation.settings, decided, filed, decided)
    await wait_until(
        lambda: kept(db, story.dispute_id),
        timeout=10,
        message="the dispute to be kept",
    )
    # A marker published after the repeats: once it is applied, so are they.
    marker = DisputeStory(str(uuid.uuid4()), world.villages[1])
    await publish(evaluation.settings, marker.filed())
    await wait_until(lambda: kept(db, marker.dispute_id), timeout=30, message="the marker kept")

    assert await status(db, world.village, world.period) == settled
    assert await kept_versions(db, [story.dispute_id]) == 2


async def test_a_ruling_that_comes_before_its_event_applies_when_the_event_arrives(
    evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
) -> None:
    world = worlds.township()
    visit = eight_to_the_city(world.village, world.at())
    story = DisputeStory(visit["event_id"], world.village)
    await publish(evaluation.settings, story.filed(), story.decided("uphold_void"))
    await wait_until(lambda: kept(db, story.dispute_id), timeout=30, message="the ruling kept")

    await desk.post(visit)
    await wait_applied(db, [visit["event_id"]])

    assert await three_no(db, world.village, world.period) is True


async def test_a_rebuild_gives_the_same_statuses_with_the_rulings(
    evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
) -> None:
    world = worlds.township()
    ids = await desk.post(*(eight_to_the_city(v, world.at()) for v in world.villages[:3]))
    await wait_applied(db, ids)
    stories = [DisputeStory(i, v) for i, v in zip(ids, world.villages, strict=False)]
    await publish(
        evaluation.settings,
        *(s.filed() for s in stories),
        stories[0].decided("uphold_void"),
        stories[1].decided("uphold_reattribute", new_unit=world.villages[2]),
        stories[2].decided("reject"),
    )
    await until(db, world.villages[0], world.period, clean=True)
    await until(db, world.villages[1], world.period, clean=True)

    report = await rebuild(evaluation.settings, clock=evaluation.clock, swap=False)

    assert report.differences == []


@pytest.mark.slow
@pytest.mark.faults  # kills its own consumer process, nothing shared
@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
async def test_the_consumer_killed_around_a_rulings_commit_changes_nothing(
    point: str,
    evaluation: Evaluation,
    desk: Desk,
    worlds: Worlds,
    db: Database,
    tmp_path: Path,
) -> None:
    world = worlds.township()
    villages = world.villages[:6]
    ids = await desk.post(*(eight_to_the_city(v, world.at()) for v in villages))
    await wait_applied(db, ids)
    stories = [DisputeStory(i, v) for i, v in zip(ids, villages, strict=True)]
    # Topics of the test's own: only the process started here reads these rulings.
    own = evaluation.settings.model_copy(update={"topic_prefix": f"test-{uuid.uuid4().hex[:10]}."})
    await kafka.ensure_topics(own)
    try:
        await publish(own, *(m for s in stories for m in (s.filed(), s.decided("uphold_void"))))
        env = crash_env(
            evaluation,
            evaluation_group=f"rulings-{point}",
            evaluation_batch_size="3",
            topic_prefix=own.topic_prefix,
        )
        log = tmp_path / "consumer.log"
        dispute_ids = [s.dispute_id for s in stories]

        crashing = await consume(env | {"SANWU_EVALUATION_CRASH_AT": point}, log)
        assert await asyncio.wait_for(crashing.wait(), 60) == CRASH_EXIT_CODE, log.read_text()
        at_crash = await upheld(db, dispute_ids)
        if point == "before_commit":
            assert at_crash == 0  # the first batch with a ruling was rolled back
        else:
            assert 0 < at_crash < len(stories)  # committed, its offsets not

        restarted = await consume(env, log)
        try:

            async def all_kept() -> bool:
                return await kept_versions(db, dispute_ids) == 2 * len(stories)

            await wait_until(all_kept, timeout=60, message="every ruling kept")
            for village in villages:
                voided = await until(db, village, world.period, clean=True)
                assert voided["version"] == 2, voided  # marked once, voided once
        finally:
            restarted.send_signal(signal.SIGTERM)
            await asyncio.wait_for(restarted.wait(), 30)
    finally:
        await kafka.delete_topics(own, [own.disputes_topic, own.events_topic, own.status_topic])
