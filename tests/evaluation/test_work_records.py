"""Meetings and ratings in evaluation (docs/domain.md section 7): they never change three-no status;
each (unit, period) keeps the slots its own meetings fell in and the ratings of its subtree per
source, exactly once, corrected by voids and re-attributions, aged by the rolling period, and
published as `UnitIndicators` on the indicator topic once per change.

The tests use a province of their own (46: two counties of three townships of four villages)
and the plan's `2018` period, which the other evaluation tests leave to intake."""

import json
import random
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from services.evaluation.live.indicators import indicators_of
from services.evaluation.rebuild.run import rebuild
from shared.cadence import Cadence, cadence_of
from shared.campaign import SHANGHAI, rolling_window
from shared.db import Database
from shared.events import Rating, RatingSource
from shared.indicators import RatingCounts, UnitIndicators
from shared.registry.generator import ProvinceShape, generate, write_csv
from shared.registry.loader import load_file
from shared.status import ROLLING
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import Desk, status, wait_applied
from tests.evaluation.test_exactly_once import incoming
from tests.evaluation.work_records import (
    PERIOD,
    all_indicators,
    apply_directly,
    at,
    counts,
    held,
    indicators,
    published,
    township,
    village,
    wait_published,
)
from tests.support import events
from tests.support.stack import read_topic

FIRST, LAST = date(2018, 4, 30), date(2018, 12, 31)
SATISFIED = frozenset({Rating.satisfied, Rating.basically_satisfied})
SHAPE = ProvinceShape(
    province="46", cities=1, counties=2, townships_per_county=3, villages_per_township=4
)
COUNTY_A, COUNTY_B = "460101000000", "460102000000"


@pytest.fixture(scope="module")
async def province(evaluation: Evaluation, db: Database, tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("work-records") / "province.csv"
    with path.open("w", encoding="utf-8") as handle:
        write_csv(generate(SHAPE), handle)
    async with db.engine.begin() as connection:
        await load_file(connection, path)
    await evaluation.worker.registry.refresh()


pytestmark = pytest.mark.usefixtures("province")


class TestStatusUntouched:
    async def test_meetings_and_ratings_never_change_three_no_status(
        self, desk: Desk, db: Database
    ) -> None:
        unit = village(township(COUNTY_B, 1), 1)
        posted = [events.meeting(unit), events.rating(unit, "dissatisfied")]

        await wait_applied(db, await desk.post(*posted))

        for code in (unit, township(COUNTY_B, 1), COUNTY_B):
            assert await status(db, code, PERIOD) is None  # clean, never counted
        stored = await indicators(db, unit)
        assert held(stored) == [date(2018, 5, 28)]
        assert counts(stored).dissatisfied == 1


class TestMeetings:
    async def test_a_village_meeting_in_35_of_its_36_weeks(self, desk: Desk, db: Database) -> None:
        unit = village(township(COUNTY_A, 1), 1)
        weeks = [FIRST + timedelta(weeks=n) for n in range(36)]
        missing = weeks[15]
        # Meetings on different days of their weeks; the Sunday one still falls in its week.
        posted = [
            events.meeting(unit, occurred_at=at(week + timedelta(days=n % 7)))
            for n, week in enumerate(weeks)
            if week != missing
        ]

        await wait_applied(db, await desk.post(*posted))

        stored = await indicators(db, unit)
        assert held(stored) == [w for w in weeks if w != missing]
        assert missing not in held(stored)
        kept = cadence_of(
            held(stored), cadence=Cadence.week, first=FIRST, last=LAST, today=date(2019, 3, 1)
        )
        assert (kept.required, kept.held, kept.missed, kept.open) == (36, 35, [missing], None)
        assert held(await indicators(db, township(COUNTY_A, 1))) == []  # not the township's

    async def test_a_township_in_16_half_months_and_a_county_in_8_months(
        self, desk: Desk, db: Database
    ) -> None:
        town = township(COUNTY_A, 2)
        halves = [date(2018, m, d) for m in range(5, 13) for d in (1, 16)]
        months = [date(2018, m, 1) for m in range(5, 13)]
        posted = [events.meeting(town, occurred_at=at(h + timedelta(days=14))) for h in halves]
        # The first and the last instant of a month belong to it.
        ends = [n.replace(month=n.month % 12 + 1) - timedelta(days=1) for n in months[:-1]]
        ends.append(LAST)
        posted += [
            events.meeting(COUNTY_A, occurred_at=at(months[n], "00:00:00+08:00"))
            if n % 2
            else events.meeting(COUNTY_A, occurred_at=at(ends[n], "23:59:59+08:00"))
            for n in range(len(months))
        ]

        await wait_applied(db, await desk.post(*posted))

        today = date(2019, 2, 1)
        town_row, county_row = await indicators(db, town), await indicators(db, COUNTY_A)
        assert held(town_row) == halves
        assert held(county_row) == months
        kept = cadence_of(
            held(town_row), cadence=Cadence.half_month, first=FIRST, last=LAST, today=today
        )
        assert (kept.required, kept.held, kept.missed) == (16, 16, [])
        kept = cadence_of(
            held(county_row), cadence=Cadence.month, first=FIRST, last=LAST, today=today
        )
        assert (kept.required, kept.held, kept.missed) == (8, 8, [])
        for code in village(town, 1), village(town, 2):
            assert await indicators(db, code) is None  # a township's meeting is not theirs

    async def test_sunday_night_and_monday_morning_fall_in_two_weeks(
        self, desk: Desk, db: Database
    ) -> None:
        unit = village(township(COUNTY_A, 1), 2)
        sunday = events.meeting(unit, occurred_at="2018-06-10T23:59:59+08:00")
        # Monday 00:00 in Shanghai, sent in UTC: still Sunday there.
        monday = events.meeting(unit, occurred_at="2018-06-10T16:00:00+00:00")

        await wait_applied(db, await desk.post(sunday, monday))

        assert held(await indicators(db, unit)) == [date(2018, 6, 4), date(2018, 6, 11)]

    async def test_a_voided_meeting_leaves_its_slot_missed_again(
        self, desk: Desk, db: Database
    ) -> None:
        unit = village(township(COUNTY_A, 1), 3)
        first, other = (
            events.meeting(unit, occurred_at=at(date(2018, 7, 2))),
            events.meeting(unit, occurred_at=at(date(2018, 7, 9))),
        )
        twice = events.meeting(unit, occurred_at=at(date(2018, 7, 12)))  # the same week
        await wait_applied(db, await desk.post(first, other, twice))
        before = await indicators(db, unit)

        await wait_applied(db, await desk.post(events.voided(first), events.voided(twice)))

        after = await indicators(db, unit)
        assert held(before) == [date(2018, 7, 2), date(2018, 7, 9)]
        assert held(after) == [date(2018, 7, 9)]
        assert after is not None and before is not None
        assert after["version"] > before["version"]
        kept = cadence_of(
            held(after), cadence=Cadence.week, first=FIRST, last=LAST, today=date(2018, 7, 10)
        )
        assert kept.missed[-1] == date(2018, 7, 2) and kept.open == date(2018, 7, 9)

    async def test_a_void_before_its_meeting_keeps_the_slot_missed(
        self, desk: Desk, db: Database
    ) -> None:
        unit = village(township(COUNTY_A, 1), 4)
        meeting = events.meeting(unit, occurred_at=at(date(2018, 9, 3)))
        kept = events.meeting(unit, occurred_at=at(date(2018, 9, 10)))
        await wait_applied(db, await desk.post(events.voided(meeting)))

        await wait_applied(db, await desk.post(meeting, kept))

        assert held(await indicators(db, unit)) == [date(2018, 9, 10)]

    async def test_a_reattributed_meeting_moves_to_its_new_unit(
        self, desk: Desk, db: Database
    ) -> None:
        town = township(COUNTY_A, 3)
        meeting = events.meeting(village(town, 1), occurred_at=at(date(2018, 10, 1)))
        await wait_applied(db, await desk.post(meeting))

        await wait_applied(db, await desk.post(events.reattributed(meeting, village(town, 2))))

        assert held(await indicators(db, village(town, 1))) == []
        assert held(await indicators(db, village(town, 2))) == [date(2018, 10, 1)]


class TestRatings:
    async def test_three_satisfied_one_basically_one_dissatisfied_rate_point_eight(
        self, desk: Desk, db: Database, evaluation: Evaluation
    ) -> None:
        town = township(COUNTY_A, 1)
        unit = village(town, 1)
        ratings = [
            events.rating(unit, "satisfied", source="petitioner"),
            events.rating(unit, "satisfied", source="petitioner"),
            events.rating(unit, "satisfied", source="third_party"),
            events.rating(unit, "basically_satisfied", source="third_party"),
            events.rating(unit, "dissatisfied", source="representative"),
        ]
        await wait_applied(db, await desk.post(*ratings))

        for code in (unit, town, COUNTY_A):
            row = await indicators(db, code)
            assert counts(row).rate(SATISFIED) == pytest.approx(0.8), code
            assert counts(row, "petitioner").rate(SATISFIED) == 1.0
            assert counts(row, "third_party") == RatingCounts(satisfied=1, basically_satisfied=1)
            assert counts(row, "representative").rate(SATISFIED) == 0.0
        assert counts(await indicators(db, village(town, 2))).total == 0  # nor a sibling

        await wait_applied(db, await desk.post(events.voided(ratings[0])))

        for code in (unit, town, COUNTY_A):
            row = await indicators(db, code)
            assert counts(row).rate(SATISFIED) == pytest.approx(0.75), code
            assert counts(row, "petitioner") == RatingCounts(satisfied=1)
        county = await indicators(db, COUNTY_A)
        assert county is not None
        message = (await wait_published(evaluation.settings, COUNTY_A, county["version"]))[-1]
        assert message.all_ratings().rate(SATISFIED) == pytest.approx(0.75)

    async def test_a_reattributed_rating_leaves_its_old_chain_for_the_new_one(
        self, desk: Desk, db: Database
    ) -> None:
        old, new = township(COUNTY_B, 2), township(COUNTY_B, 3)
        rating = events.rating(village(old, 1), "dissatisfied", source="third_party")
        await wait_applied(db, await desk.post(rating))

        await wait_applied(db, await desk.post(events.reattributed(rating, village(new, 1))))

        assert counts(await indicators(db, old)).total == 0
        assert counts(await indicators(db, village(old, 1))).total == 0
        assert counts(await indicators(db, new), "third_party").dissatisfied == 1
        assert counts(await indicators(db, village(new, 1))).dissatisfied == 1


class TestExactlyOnce:
    async def test_a_batch_seen_twice_counts_nothing_twice(
        self, evaluation: Evaluation, desk: Desk, db: Database, keys: dict[str, str]
    ) -> None:
        town = township(COUNTY_B, 1)
        unit = village(town, 2)
        payloads = [
            events.meeting(unit, occurred_at=at(date(2018, 11, 5))),
            events.meeting(unit, occurred_at=at(date(2018, 11, 6))),
            events.rating(unit, "satisfied"),
        ]
        await wait_applied(db, await desk.post(*payloads))
        before = {code: await indicators(db, code) for code in (unit, town)}

        # Delivered again, as after a crash before the offsets were committed.
        items = [incoming(p, key=keys["admin"]) for p in payloads]
        again = await apply_directly(evaluation, db, items + items[:1])

        assert again.event_ids == [] and again.indicators == [] and again.redelivered == 3
        assert {code: await indicators(db, code) for code in (unit, town)} == before
        stored = before[unit]
        assert held(stored) == [date(2018, 11, 5)] and counts(stored).satisfied == 1
        assert counts(before[town]).satisfied == 1


class TestPublished:
    async def test_each_change_is_published_once_with_the_next_version(
        self, desk: Desk, db: Database, evaluation: Evaluation
    ) -> None:
        unit = village(township(COUNTY_B, 2), 2)
        meetings = [events.meeting(unit, occurred_at=at(date(2018, 8, d))) for d in (6, 13)]
        await wait_applied(db, await desk.post(meetings[0]))
        await wait_applied(db, await desk.post(meetings[1]))
        await wait_applied(db, await desk.post(events.voided(meetings[0])))

        stored = await indicators(db, unit)
        assert stored is not None and stored["version"] == 3
        messages = await wait_published(evaluation.settings, unit, 3)
        assert [m.version for m in messages] == [1, 2, 3]
        assert [m.meetings_held for m in messages] == [
            [date(2018, 8, 6)],
            [date(2018, 8, 6), date(2018, 8, 13)],
            [date(2018, 8, 13)],
        ]
        assert messages[-1].changed_at == stored["changed_at"]
        assert messages[-1] == indicators_of(stored)  # the row as the model has it
        assert messages[-1] == UnitIndicators(  # and as the test expects it, field by field
            unit_code=unit,
            period=PERIOD,
            meetings_held=[date(2018, 8, 13)],
            ratings=dict.fromkeys(RatingSource, RatingCounts()),
            changed_at=stored["changed_at"],
            version=3,
        )
        assert set(messages[-1].ratings) == {"petitioner", "third_party", "representative"}

    async def test_units_whose_indicators_did_not_change_publish_nothing(
        self, desk: Desk, db: Database, evaluation: Evaluation
    ) -> None:
        unit = village(township(COUNTY_B, 3), 3)
        marker = village(township(COUNTY_B, 3), 4)
        visit = events.visit(unit, destination="county", headcount=5)
        await wait_applied(db, await desk.post(visit))
        counted = await status(db, unit, PERIOD)
        assert counted is not None and counted["three_no"] is False
        # A later meeting elsewhere: once it is on the topic, the visit's batch was relayed.
        await wait_applied(db, await desk.post(events.meeting(marker)))
        await wait_published(evaluation.settings, marker, 1)

        assert await published(evaluation.settings, unit) == []
        assert await indicators(db, unit) is None
        status_keys = {
            key
            for _, key, _, _ in await read_topic(
                evaluation.settings, evaluation.settings.status_topic
            )
        }
        assert f"{marker}:{PERIOD}".encode() not in status_keys


class TestRolling:
    async def test_a_record_leaving_the_trailing_12_months_leaves_the_rolling_indicators(
        self, desk: Desk, db: Database, evaluation: Evaluation
    ) -> None:
        town = township(COUNTY_B, 3)
        unit = village(town, 2)
        moment = rolling_window(evaluation.clock.now())[0] + timedelta(hours=1)
        meeting = events.meeting(unit, occurred_at=moment.isoformat())
        rating = events.rating(unit, "satisfied", occurred_at=moment.isoformat())
        await wait_applied(db, await desk.post(meeting, rating))
        local = moment.astimezone(SHANGHAI).date()
        week = local - timedelta(days=local.weekday())
        before = await indicators(db, unit, ROLLING)
        assert held(before) == [week] and counts(before).satisfied == 1
        assert counts(await indicators(db, town, ROLLING)).satisfied == 1

        evaluation.clock.advance(timedelta(hours=2))
        await evaluation.worker.expiry.run_once()

        after = await indicators(db, unit, ROLLING)
        assert after is not None and before is not None
        assert held(after) == [] and counts(after).total == 0
        assert after["version"] == before["version"] + 1
        assert counts(await indicators(db, town, ROLLING)).total == 0
        year = str(moment.astimezone(SHANGHAI).year)
        assert held(await indicators(db, unit, year)) == [week]  # its own year keeps it
        messages = await wait_published(evaluation.settings, unit, after["version"], ROLLING)
        assert json.loads(messages[-1].model_dump_json())["meetings_held"] == []


class TestRebuild:
    async def test_equals_the_incremental_indicators_with_voids_and_reattributions(
        self, evaluation: Evaluation, desk: Desk, db: Database
    ) -> None:
        rng = random.Random(12)
        townships = [township(c, n) for c in (COUNTY_A, COUNTY_B) for n in (1, 2, 3)]
        units = [COUNTY_A, COUNTY_B, *townships]
        units += [village(t, n) for t in townships for n in (1, 2, 3, 4)]
        posted = []
        for _ in range(200):
            unit = rng.choice(units)
            day = FIRST + timedelta(days=rng.randrange(246))
            moment = at(day, rng.choice(("00:00:00+08:00", "23:59:59+08:00", "10:00:00+08:00")))
            if rng.random() < 0.5:
                posted.append(events.meeting(unit, occurred_at=moment))
            else:
                rating = rng.choice(["satisfied", "basically_satisfied", "dissatisfied"])
                source = rng.choice(["petitioner", "third_party", "representative"])
                posted.append(events.rating(unit, rating, source=source, occurred_at=moment))
        corrections = [
            events.voided(target)
            if rng.random() < 0.5
            else events.reattributed(target, rng.choice(units))
            for target in rng.sample(posted, 50)
        ]
        await wait_applied(db, await desk.post(*corrections[:10]))  # before their targets
        await wait_applied(db, await desk.post(*posted, *corrections[10:]))
        live = await all_indicators(db)

        report = await rebuild(evaluation.settings, clock=evaluation.clock)

        assert report.swapped and report.differences == []
        assert report.indicators > 0
        assert await all_indicators(db) == live

    async def test_repairs_what_differs_with_the_next_version_and_publishes_it(
        self, evaluation: Evaluation, desk: Desk, db: Database
    ) -> None:
        unit = village(township(COUNTY_A, 1), 1)
        await wait_applied(db, await desk.post(events.meeting(unit, occurred_at=at(LAST))))
        before = await indicators(db, unit)
        assert before is not None and LAST in held(before)
        async with db.engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "UPDATE evaluation.indicators SET meetings_held = '{}' "
                    "WHERE unit_code = :unit AND period = :period"
                ),
                {"unit": unit, "period": PERIOD},
            )

        dry = await rebuild(evaluation.settings, clock=evaluation.clock, swap=False)
        assert dry.differences == [(unit, PERIOD)]

        await rebuild(evaluation.settings, clock=evaluation.clock)

        after = await indicators(db, unit)
        assert after is not None and held(after) == held(before)
        assert after["version"] == before["version"] + 1
        messages = await wait_published(evaluation.settings, unit, after["version"])
        assert messages[-1].meetings_held == held(before)
        assert messages[-1] == indicators_of(after)  # as the database wrote it, field by field
        assert messages[-1] == UnitIndicators(
            unit_code=unit,
            period=PERIOD,
            # The unit's meetings and ratings of the tests above too, as the row holds them.
            meetings_held=held(before),
            ratings={source: counts(before, source) for source in RatingSource},
            changed_at=after["changed_at"],
            version=before["version"] + 1,
        )
