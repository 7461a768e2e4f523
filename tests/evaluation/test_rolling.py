"""The rolling period (trailing 12 months) changes with time alone, moved here by the
evaluation's clock rather than by sleeping; late events land in their own periods."""

import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.evaluation.config import Clock
from services.evaluation.live.expiry import RollingExpiry
from services.evaluation.live.service import EvaluationService
from shared import campaign as campaign_file
from shared import kafka
from shared.campaign import SHANGHAI, CurrentCampaign, rolling_window, system_now
from shared.config import Settings
from shared.db import Database
from shared.events import FREE_TEXT_FIELDS
from shared.registry.loader import load_file
from shared.status import ROLLING
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import YEARS, Desk, World, Worlds, status, wait_applied
from tests.support import events
from tests.support.waiting import wait_until


def just_inside(evaluation: Evaluation) -> datetime:
    """An hour before the event leaves the rolling window."""
    return rolling_window(evaluation.clock.now())[0] + timedelta(hours=1)


def year_of(moment: datetime) -> str:
    return str(moment.astimezone(SHANGHAI).year)


def new_year_after(moment: datetime) -> datetime:
    """The first instant of the next calendar year in Shanghai."""
    return datetime(moment.astimezone(SHANGHAI).year + 1, 1, 1, tzinfo=SHANGHAI)


def earlier_this_year(now: datetime, *, by: timedelta) -> datetime:
    """`by` before now, but not before this year began: on 1 January, yesterday is last year."""
    return max(now - by, datetime(now.astimezone(SHANGHAI).year, 1, 1, tzinfo=SHANGHAI))


def ahead_this_year(now: datetime, *, by: timedelta) -> timedelta:
    """`by`, or less when New Year comes sooner: the moment `now + result` stays in this year."""
    return min(by, (new_year_after(now) - now) / 2)


async def publish(settings: Settings, event: dict[str, Any], *, county: str) -> None:
    """Onto the event topic as intake's relay puts it. Intake takes events up to 5 minutes
    ahead of its own clock; the evaluation's clock in these tests runs ahead of intake's."""
    record = {
        "schema_version": 1,
        "event": {k: v for k, v in event.items() if k not in FREE_TEXT_FIELDS},
        "accepted_at": system_now().astimezone(SHANGHAI).isoformat(),
        "key_id": "k-future",
    }
    producer = kafka.producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.events_topic, json.dumps(record).encode(), key=county.encode()
        )
    finally:
        await producer.stop()


class TestRollingExpiry:
    async def test_flips_a_unit_back_to_clean_when_its_only_event_passes_12_months(
        self, evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        world = worlds.recent()
        occurred = just_inside(evaluation)
        event = events.incident(world.village, occurred_at=occurred.isoformat())
        await desk.post(event)
        await wait_applied(db, [event["event_id"]])
        counted = await status(db, world.village, ROLLING)
        assert counted is not None and counted["three_no"] is False and counted["incident"] == 1
        await evaluation.worker.expiry.run_once()  # time has not moved: nothing to age out
        assert await status(db, world.village, ROLLING) == counted

        evaluation.clock.advance(timedelta(hours=2))
        changes = await evaluation.worker.expiry.run_once()

        expired = await status(db, world.village, ROLLING)
        assert expired is not None
        assert expired["three_no"] is True
        assert expired["incident"] == 0 and expired["counting_event_ids"] == []
        assert expired["version"] == counted["version"] + 1
        assert (world.village, ROLLING) in {(s.unit_code, s.period) for s in changes}
        township = await status(db, world.township, ROLLING)
        assert township is not None and township["three_no"] is True
        # The named period it fell in keeps it.
        kept = await status(db, world.village, year_of(occurred))
        assert kept is not None and kept["counting_event_ids"] == [event["event_id"]]

    async def test_a_unit_stays_marked_while_another_event_counts(
        self, evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        world = worlds.recent()
        old = events.incident(world.village, occurred_at=just_inside(evaluation).isoformat())
        recent = events.incident(
            world.village, occurred_at=(evaluation.clock.now() - timedelta(days=30)).isoformat()
        )
        await desk.post(old, recent)
        await wait_applied(db, [old["event_id"], recent["event_id"]])

        evaluation.clock.advance(timedelta(hours=2))
        await evaluation.worker.expiry.run_once()

        stored = await status(db, world.village, ROLLING)
        assert stored is not None and stored["three_no"] is False
        assert stored["counting_event_ids"] == [recent["event_id"]]

    async def test_a_late_event_lands_in_its_own_period_and_not_in_the_rolling_one(
        self, evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        world = worlds.recent()
        occurred = rolling_window(evaluation.clock.now())[0] - timedelta(days=20)
        event = events.visit(
            world.village, destination="national", skip_level=True, occurred_at=occurred.isoformat()
        )

        await desk.post(event)
        await wait_applied(db, [event["event_id"]])

        assert await status(db, world.village, ROLLING) is None
        stored = await status(db, world.village, year_of(occurred))
        assert stored is not None and stored["skip_level"] == 1


class TestNewYear:
    async def test_a_period_that_appears_while_running_gets_the_statuses_of_its_events(
        self, evaluation: Evaluation, worlds: Worlds, db: Database
    ) -> None:
        service = evaluation.worker.service
        full = service.campaign
        this_year = year_of(evaluation.clock.now())
        # As if the service had started last year: the campaign has no period for this one.
        service.campaign = dataclasses.replace(
            full, periods=tuple(p for p in full.periods if p.id != this_year)
        )
        try:
            world = worlds.recent()
            yesterday = earlier_this_year(evaluation.clock.now(), by=timedelta(days=1))
            event = events.incident(world.village, occurred_at=yesterday.isoformat())
            # Straight onto the topic: on 31 December, from 20:00 on, the evaluation's clock
            # (hours ahead after the tests above) is in the next year, intake's not yet, and
            # intake refuses a time more than minutes ahead of its own.
            await publish(evaluation.settings, event, county=world.county)
            await wait_applied(db, [event["event_id"]])
            assert await status(db, world.village, this_year) is None

            await evaluation.worker.expiry.run_once()

            stored = await status(db, world.village, this_year)
            assert stored is not None and stored["counting_event_ids"] == [event["event_id"]]
            assert service.campaign.period(this_year) is not None
        finally:
            service.campaign = full


@pytest.fixture(scope="module")
async def own_townships(
    evaluation: Evaluation, db: Database, tmp_path_factory: pytest.TempPathFactory
) -> list[World]:
    """Townships of a county of their own (province 54), for the tests below with recent
    events: the demo county's townships kept for such tests are taken by the ones above."""
    county, townships = "540101000000", [f"540101{100 + t:03d}000" for t in range(6)]
    lines = [
        "code,name,level,parent_code",
        "540000000000,测试省,province,",
        "540100000000,测试市,city,540000000000",
        f"{county},测试县,county,540100000000",
    ]
    for township in townships:
        lines.append(f"{township},镇{township[6:9]},township,{county}")
        lines += [f"{township[:9]}{200 + v},村,village,{township}" for v in (1, 2)]
    path = tmp_path_factory.mktemp("rolling") / "units.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    async with db.engine.begin() as connection:
        await load_file(connection, path)
    await evaluation.worker.registry.refresh()
    return [World(YEARS[-1], county, t, (f"{t[:9]}201", f"{t[:9]}202")) for t in townships]


class TestCorrectionsAfterTheWindowMoved:
    @pytest.mark.parametrize("correction", ["voided", "reattributed"])
    async def test_correcting_an_event_that_left_the_window_since_the_last_pass_leaves_it_clean(
        self,
        evaluation: Evaluation,
        desk: Desk,
        own_townships: list[World],
        db: Database,
        correction: str,
    ) -> None:
        world = own_townships.pop()
        event = events.incident(world.village, occurred_at=just_inside(evaluation).isoformat())
        await desk.post(event)
        await wait_applied(db, [event["event_id"]])
        await evaluation.worker.expiry.run_once()  # the last pass: the event is still inside
        counted = await status(db, world.village, ROLLING)
        assert counted is not None and counted["three_no"] is False

        evaluation.clock.advance(timedelta(hours=2))  # it leaves the window; no pass since
        elsewhere = world.villages[1]
        fix = (
            events.voided(event)
            if correction == "voided"
            else events.reattributed(event, elsewhere)
        )
        await desk.post(fix)
        await wait_applied(db, [fix["event_id"]])
        await evaluation.worker.expiry.run_once()

        for unit in (world.village, world.township):
            stored = await status(db, unit, ROLLING)
            assert stored is not None and stored["three_no"] is True, unit
            assert stored["counting_event_ids"] == []
        moved = await status(db, elsewhere, ROLLING)
        assert moved is None or moved["three_no"] is True


class TestFutureEvents:
    async def test_an_event_dated_minutes_ahead_counts_in_the_rolling_period_from_its_time(
        self, evaluation: Evaluation, own_townships: list[World], db: Database, settings: Settings
    ) -> None:
        world = own_townships.pop()
        now = evaluation.clock.now()
        ahead = ahead_this_year(now, by=timedelta(minutes=3))
        at = now + ahead
        event = events.visit(
            world.village, destination="county", headcount=6, occurred_at=at.isoformat()
        )
        await publish(settings, event, county=world.county)
        await wait_applied(db, [event["event_id"]])

        assert await status(db, world.village, ROLLING) is None  # not before its time
        named = await status(db, world.village, year_of(at))
        assert named is not None and named["counting_event_ids"] == [event["event_id"]]

        evaluation.clock.advance(ahead + timedelta(minutes=1))

        async def counted() -> bool:
            stored = await status(db, world.village, ROLLING)
            return stored is not None and stored["counting_event_ids"] == [event["event_id"]]

        # No pass is due for an hour: the worker wakes for the event's own time.
        await wait_until(counted, timeout=10, message="the rolling status to count the event")
        stored = await status(db, world.village, ROLLING)
        assert stored is not None and stored["three_no"] is False and stored["version"] == 1

    async def test_a_rolling_status_leaves_out_what_lies_ahead_of_its_time(
        self,
        evaluation: Evaluation,
        desk: Desk,
        own_townships: list[World],
        db: Database,
        settings: Settings,
    ) -> None:
        world = own_townships.pop()
        now = evaluation.clock.now()
        past = events.incident(world.village, occurred_at=(now - timedelta(days=1)).isoformat())
        ahead = events.incident(world.village, occurred_at=(now + timedelta(minutes=2)).isoformat())
        await desk.post(past)
        await publish(settings, ahead, county=world.county)
        await wait_applied(db, [past["event_id"], ahead["event_id"]])

        stored = await status(db, world.village, ROLLING)
        assert stored is not None and stored["counting_event_ids"] == [past["event_id"]]


class TestNewYearByTheClock:
    def test_the_evaluation_takes_the_new_years_period_when_its_clock_reaches_it(
        self, evaluation: Evaluation
    ) -> None:
        eve = datetime(2030, 12, 31, 23, 59, 30, tzinfo=SHANGHAI)
        campaign = campaign_file.load(evaluation.settings.campaign_file, today=eve.date())
        clock = Clock(eve - Clock().now())
        # A service of its own: the shared one must keep the real year.
        service = EvaluationService(campaign=campaign, registry=evaluation.worker.registry)
        expiry = RollingExpiry(
            db=evaluation.worker.db,
            service=service,
            clock=clock,
            interval=3600,
            campaign=CurrentCampaign(campaign, now=clock.now),
        )
        assert expiry.new_periods() == []

        clock.advance(timedelta(minutes=1))

        assert expiry.new_periods() == ["2031"]
        assert service.campaign.period("2031") is not None
        assert expiry.new_periods() == []


class TestTheseTestsOnAnyDay:
    """The moments the tests above pick stay in the current year on its first and last day."""

    @pytest.mark.parametrize(
        "now",
        [
            datetime(2031, 1, 1, 0, 30, tzinfo=SHANGHAI),
            datetime(2030, 12, 31, 23, 59, 59, tzinfo=SHANGHAI),
            datetime(2030, 6, 15, 12, tzinfo=SHANGHAI),
        ],
        ids=["new year's day", "new year's eve", "midsummer"],
    )
    def test_yesterday_and_minutes_ahead_are_in_this_year(self, now: datetime) -> None:
        yesterday = earlier_this_year(now, by=timedelta(days=1))
        ahead = ahead_this_year(now, by=timedelta(minutes=3))

        assert yesterday <= now and year_of(yesterday) == year_of(now)
        assert ahead > timedelta(0) and year_of(now + ahead) == year_of(now)
