"""Voids and re-attributions restore the exact previous counts, wherever they arrive: after
their target, before it, twice, or for an event that never comes; of several re-attributions of
one event, the one accepted last wins."""

from typing import Any

import pytest

from shared.db import Database
from tests.evaluation.helpers import Desk, World, Worlds, content, status, wait_applied
from tests.support import events

pytestmark = pytest.mark.usefixtures("evaluation")
Statuses = dict[str, dict[str, Any] | None]
DECIDED_EARLIER = "2025-01-02T10:00:00+08:00"  # before any correction the tests post


async def chain(db: Database, world: World, village: str | None = None) -> Statuses:
    """The statuses of a village, its township and county in the world's period."""
    units = (village or world.village, world.township, world.county)
    return {unit: await status(db, unit, world.period) for unit in units}


def contents(statuses: Statuses) -> dict[str, dict[str, Any]]:
    return {unit: content(row) for unit, row in statuses.items()}


async def post_applied(desk: Desk, db: Database, *posted: dict[str, Any]) -> None:
    await wait_applied(db, await desk.post(*posted))


async def background(desk: Desk, db: Database, world: World) -> None:
    """Events already counted before the one being corrected."""
    await post_applied(
        desk,
        db,
        events.visit(world.village, destination="county", headcount=5, occurred_at=world.at()),
        events.visit(world.village, destination="city", skip_level=True, occurred_at=world.at()),
    )


def eight_to_the_city(unit: str, world: World) -> dict[str, Any]:
    """Marks its village and township (5 or more to the city), not its county."""
    return events.visit(
        unit, destination="city", headcount=8, occurred_at=world.at("07-01T08:00:00+08:00")
    )


class TestVoid:
    async def test_restores_the_exact_previous_counts(
        self, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        world = worlds.township()
        await background(desk, db, world)
        before = await chain(db, world)
        target = eight_to_the_city(world.village, world)
        await post_applied(desk, db, target)
        counted = await chain(db, world)
        assert content(counted[world.township])["collective_people"] == 8

        await post_applied(desk, db, events.voided(target))

        after = await chain(db, world)
        assert contents(after) == contents(before)
        for unit in (world.village, world.township):
            assert after[unit]["version"] == counted[unit]["version"] + 1  # type: ignore[index]

    async def test_again_or_for_an_unknown_event_changes_nothing(
        self, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        world = worlds.township()
        target = eight_to_the_city(world.village, world)
        await post_applied(desk, db, target, events.voided(target))
        voided = await chain(db, world)
        # The county is shared with other tests' townships: only the world's own units are known.
        assert all(content(voided[unit])["three_no"] for unit in (world.village, world.township))

        never_posted = events.visit(world.village, destination="city", headcount=9)
        await post_applied(desk, db, events.voided(target), events.voided(never_posted))

        assert await chain(db, world) == voided


class TestReattribute:
    async def test_moves_the_event_to_the_new_unit_and_its_ancestors(
        self, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        home, elsewhere = worlds.townships(2)
        await background(desk, db, home)
        home_before = await chain(db, home)
        elsewhere_before = await chain(db, elsewhere)
        target = eight_to_the_city(home.village, home)
        await post_applied(desk, db, target)

        await post_applied(desk, db, events.reattributed(target, elsewhere.village))

        assert contents(await chain(db, home)) == contents(home_before)
        moved = await chain(db, elsewhere)
        for unit in (elsewhere.village, elsewhere.township):
            assert moved[unit] is not None and elsewhere_before[unit] is None
            assert moved[unit]["counting_event_ids"] == [target["event_id"]]  # type: ignore[index]
            assert moved[unit]["collective_people"] == 8  # type: ignore[index]

    async def test_to_another_county_and_back_restores_both(
        self, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        home, away = worlds.counties(2)
        target = eight_to_the_city(home.village, home)
        await post_applied(desk, db, target)
        home_counted = await chain(db, home)
        away_before = await chain(db, away)

        await post_applied(desk, db, events.reattributed(target, away.village))
        assert content(await status(db, home.township, home.period))["three_no"] is True
        assert content(await status(db, away.township, away.period))["collective"] == 1

        await post_applied(desk, db, events.reattributed(target, home.village))
        assert contents(await chain(db, home)) == contents(home_counted)
        assert contents(await chain(db, away)) == contents(away_before)


class TestCorrectionBeforeItsTarget:
    async def test_void_is_kept_and_the_target_never_counts(
        self, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        world = worlds.township()
        await background(desk, db, world)
        before = await chain(db, world)
        target = eight_to_the_city(world.village, world)

        await post_applied(desk, db, events.voided(target))
        await post_applied(desk, db, target)

        assert await chain(db, world) == before

    async def test_reattribution_is_kept_and_the_target_counts_at_the_new_unit(
        self, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        world = worlds.township()
        await background(desk, db, world)
        before = await chain(db, world)
        target = eight_to_the_city(world.village, world)
        new_village = world.villages[1]

        await post_applied(desk, db, events.reattributed(target, new_village))
        await post_applied(desk, db, target)

        assert content(await status(db, world.village, world.period)) == content(
            before[world.village]
        )
        moved = await status(db, new_village, world.period)
        assert moved is not None and moved["counting_event_ids"] == [target["event_id"]]
        township = await status(db, world.township, world.period)
        assert township is not None and target["event_id"] in township["counting_event_ids"]


class TestOrder:
    """Of several re-attributions of one event the one accepted last wins, whenever each was
    decided (its occurred_at) and whatever its id."""

    async def test_within_a_batch_the_later_item_wins(
        self, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        world = worlds.township()
        target = eight_to_the_city(world.village, world)
        await post_applied(desk, db, target)
        first = events.reattributed(target, world.villages[1])
        later = events.reattributed(target, world.villages[2]) | {"occurred_at": DECIDED_EARLIER}
        low, high = sorted((first["event_id"], later["event_id"]))
        first["event_id"], later["event_id"] = high, low

        await post_applied(desk, db, first, later)

        assert content(await status(db, world.villages[1], world.period))["three_no"] is True
        moved = await status(db, world.villages[2], world.period)
        assert moved is not None and moved["counting_event_ids"] == [target["event_id"]]

    async def test_the_one_accepted_last_wins_though_decided_earlier(
        self, desk: Desk, worlds: Worlds, db: Database
    ) -> None:
        world = worlds.township()
        target = eight_to_the_city(world.village, world)
        await post_applied(desk, db, target)
        await post_applied(desk, db, events.reattributed(target, world.villages[1]))

        later = events.reattributed(target, world.villages[2]) | {"occurred_at": DECIDED_EARLIER}
        await post_applied(desk, db, later)

        assert content(await status(db, world.villages[1], world.period))["three_no"] is True
        moved = await status(db, world.villages[2], world.period)
        assert moved is not None and moved["counting_event_ids"] == [target["event_id"]]
