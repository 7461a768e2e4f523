"""A township's desk cannot erase another county's record: its void of a visit there is refused
(403 when intake already holds the visit; no effect when the visit arrives afterwards), and the
other county's village stays not three-no, as reporting shows."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shared.access.models import Role
from shared.registry.generator import generate, write_csv
from tests.conftest import DEMO_UNITS, SMALL_PROVINCE, TOWNSHIP, VILLAGE
from tests.support import events
from tests.support.app import bearer
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.stack import IsolatedStack

OTHER_COUNTY = "350101000000"
OTHER_VILLAGE = "350101100201"
OTHER_VILLAGE_2 = "350101100202"
PERIOD = "2018"
KEYS = {
    "township_desk": (Role.desk, TOWNSHIP),
    "other_desk": (Role.desk, OTHER_COUNTY),
    "other_reader": (Role.reader, OTHER_COUNTY),
}


@pytest.fixture(scope="module")
async def pipeline(
    stack: IsolatedStack, campaign_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pipeline]:
    """Intake, evaluation and reporting over the demo county and a second province."""
    province = tmp_path_factory.mktemp("province") / "province.csv"
    with province.open("w", encoding="utf-8") as handle:
        write_csv(generate(SMALL_PROVINCE), handle)
    async with running_pipeline(
        campaign_file=campaign_file, registry=[DEMO_UNITS, province], keys=KEYS
    ) as running:
        yield running


def eight_to_the_city(unit_code: str) -> dict[str, Any]:
    return events.visit(
        unit_code, destination="city", headcount=8, occurred_at="2018-06-03T09:30:00+08:00"
    )


async def three_no(pipeline: Pipeline, unit_code: str) -> bool:
    response = await pipeline.reporting.get(
        f"/v1/units/{unit_code}/status", pipeline.keys["other_reader"], period=PERIOD
    )
    assert response.status_code == 200, response.text
    value: bool = response.json()["three_no"]
    return value


async def correction_state(pipeline: Pipeline, event_id: str) -> tuple[str, str | None]:
    async with pipeline.db.engine.connect() as connection:
        row = await connection.execute(
            sa.text("SELECT state, reason FROM evaluation.correction WHERE event_id = :id"),
            {"id": event_id},
        )
        found = row.one()
        return found[0], found[1]


async def test_a_void_of_another_countys_known_visit_is_403_and_the_village_stays_marked(
    pipeline: Pipeline,
) -> None:
    visit = eight_to_the_city(OTHER_VILLAGE)
    await pipeline.post(pipeline.keys["other_desk"], visit)
    await pipeline.drained()
    assert not await three_no(pipeline, OTHER_VILLAGE)
    # Everything the void names is the township desk's own, except its target.
    void = events.voided(visit) | {"unit_code": VILLAGE}

    single = await pipeline.intake.post(
        "/v1/events", json=void, headers=bearer(pipeline.keys["township_desk"])
    )
    batch = await pipeline.intake.post(
        "/v1/events/batch",
        json={"events": [void | {"event_id": events.new_id()}]},
        headers=bearer(pipeline.keys["township_desk"]),
    )
    await pipeline.drained()

    assert single.status_code == 403, single.text
    assert single.headers["content-type"] == "application/problem+json"
    assert [r["status"] for r in batch.json()["results"]] == ["rejected"]
    assert batch.json()["results"][0]["error"]["status"] == 403
    assert not await three_no(pipeline, OTHER_VILLAGE)


async def test_a_void_sent_before_the_visit_has_no_effect_and_says_refused(
    pipeline: Pipeline,
) -> None:
    visit = eight_to_the_city(OTHER_VILLAGE_2)
    void = events.voided(visit) | {"unit_code": VILLAGE}

    await pipeline.post(pipeline.keys["township_desk"], void)  # intake cannot tell yet
    await pipeline.post(pipeline.keys["other_desk"], visit)
    await pipeline.drained()

    assert not await three_no(pipeline, OTHER_VILLAGE_2)
    state, reason = await correction_state(pipeline, void["event_id"])
    assert state == "refused"
    assert reason == "the event is attributed to a unit outside the sender's scope"
