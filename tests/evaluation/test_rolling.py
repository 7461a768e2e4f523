"""The rolling period (trailing 12 months) changes with time alone, moved here by the
evaluation's clock rather than by sleeping; late events land in their own periods."""

import dataclasses
from datetime import datetime, timedelta

from shared.campaign import SHANGHAI, rolling_window
from shared.db import Database
from shared.status import ROLLING
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import Desk, Worlds, status, wait_applied
from tests.support import events


def just_inside(evaluation: Evaluation) -> datetime:
    """An hour before the event leaves the rolling window."""
    return rolling_window(evaluation.clock.now())[0] + timedelta(hours=1)


def year_of(moment: datetime) -> str:
    return str(moment.astimezone(SHANGHAI).year)


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
        self, evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
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
            event = events.incident(
                world.village, occurred_at=(evaluation.clock.now() - timedelta(days=1)).isoformat()
            )
            await desk.post(event)
            await wait_applied(db, [event["event_id"]])
            assert await status(db, world.village, this_year) is None

            await evaluation.worker.expiry.run_once()

            stored = await status(db, world.village, this_year)
            assert stored is not None and stored["counting_event_ids"] == [event["event_id"]]
            assert service.campaign.period(this_year) is not None
        finally:
            service.campaign = full
