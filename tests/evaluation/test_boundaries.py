"""Every boundary of docs/domain.md section 3, end to end: posted to intake, through Kafka, applied
by the evaluation, and read back from the stored statuses of the village, the township and the
county. All cases are posted together, each under a county and period of its own."""

from typing import Any

import pytest

from services.evaluation.rules import Criterion
from shared.db import Database
from shared.levels import CAMPAIGN_LEVELS, Level
from tests.evaluation.cases import BOUNDARIES, Boundary
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import Desk, World, Worlds, status, wait_applied

COUNTED = ("skip_level", "non_reception_site", "collective", "incident")


@pytest.fixture(scope="module")
async def posted(
    evaluation: Evaluation, desk: Desk, worlds: Worlds, db: Database
) -> dict[str, tuple[World, dict[str, Any]]]:
    cases = {}
    for boundary in BOUNDARIES:
        world = worlds.county()
        unit = {
            Level.village: world.village,
            Level.township: world.township,
            Level.county: world.county,
        }[boundary.attributed_to]
        cases[boundary.name] = (world, boundary.event(unit, world.at()))
    ids = await desk.post(*(event for _, event in cases.values()))
    await wait_applied(db, ids)
    return cases


def unit_at(world: World, level: Level) -> str:
    return {Level.village: world.village, Level.township: world.township}.get(level, world.county)


@pytest.mark.parametrize("boundary", BOUNDARIES, ids=str)
@pytest.mark.parametrize("level", CAMPAIGN_LEVELS, ids=str)
async def test_stored_status(
    boundary: Boundary,
    level: Level,
    posted: dict[str, tuple[World, dict[str, Any]]],
    db: Database,
) -> None:
    world, event = posted[boundary.name]
    counts_here = CAMPAIGN_LEVELS.index(level) <= CAMPAIGN_LEVELS.index(boundary.attributed_to)
    expected = boundary.expected(level) if counts_here else Criterion.none()

    stored = await status(db, unit_at(world, level), world.period)

    if not expected:
        assert stored is None  # clean, version 0: no row
        return
    assert stored is not None
    assert stored["three_no"] is False
    assert stored["version"] == 1
    assert stored["counting_event_ids"] == [event["event_id"]]
    for name in COUNTED:
        met = Criterion[name] in expected
        assert stored[name] == int(met), name
        assert stored[f"{name}_people"] == (boundary.people if met else 0), name
