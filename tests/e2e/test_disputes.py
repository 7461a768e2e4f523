"""A dispute's whole path, through every service that shows it: a visit reported down marks a
village; its desk disputes it as not its own; the county bureau upholds by re-attributing it to
a village of another township, and the statuses follow (the first village and its township
three-no again, the second and its township not); the second village's desk asks the city to
review, the city reverses, and everything returns. A rejected dispute that the city upholds on
the filer's request moves the mark the other way. Evaluation says why, and until when the event
could be disputed."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shared.access.models import Role
from shared.campaign import SHANGHAI, system_now
from tests.conftest import (
    COUNTY,
    DEMO_UNITS,
    SIBLING_TOWNSHIP,
    SIBLING_VILLAGE,
    TOWNSHIP,
    VILLAGE,
)
from tests.support import events
from tests.support.app import bearer
from tests.support.cases import MovableClock, dispute, years_covered
from tests.support.pipeline import KeySpecs, Pipeline, running_pipeline
from tests.support.stack import IsolatedStack
from tests.support.waiting import poll, wait_until

CITY = "340700000000"
THIRD_VILLAGE = "340722100203"  # of 枞阳镇, like VILLAGE; each test its own villages
FOURTH_VILLAGE = "340722100204"
PERIOD = "2018"
KEYS: KeySpecs = {
    "village_desk": (Role.desk, VILLAGE),
    "sibling_desk": (Role.desk, SIBLING_VILLAGE),
    "third_desk": (Role.desk, THIRD_VILLAGE),
    "county_bureau": (Role.bureau, COUNTY),
    "city_bureau": (Role.bureau, CITY),
    "county_reader": (Role.reader, COUNTY),
    "county_desk": (Role.desk, COUNTY),
}


@pytest.fixture(scope="module")
async def pipeline(
    stack: IsolatedStack, campaign_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pipeline]:
    """Intake, evaluation, reporting and cases over the demo county. Events are accepted now,
    so the calendar must cover this year and the next (loaded as test data when the holiday
    package does not have it yet)."""
    async with running_pipeline(
        campaign_file=campaign_file, registry=[DEMO_UNITS], keys=KEYS, cases=MovableClock()
    ) as running:
        this_year = system_now().astimezone(SHANGHAI).year
        async with years_covered(
            running.db,
            {this_year, this_year + 1},
            tmp_path_factory.mktemp("calendar"),
            database_url=running.settings.database_url,
        ):
            yield running


def reported_down(unit_code: str) -> dict[str, Any]:
    """Eight people from the village at the city's reception, as the city reports it."""
    return events.visit(
        unit_code, destination="city", headcount=8, occurred_at="2018-06-03T09:30:00+08:00"
    )


async def status(pipeline: Pipeline, unit_code: str) -> dict[str, Any]:
    response = await pipeline.reporting.get(
        f"/v1/units/{unit_code}/status", pipeline.keys["county_reader"], period=PERIOD
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def until_three_no(pipeline: Pipeline, expected: dict[str, bool]) -> None:
    """Until reporting shows each unit three-no or not as expected."""

    async def shown() -> bool:
        shown = [
            (await status(pipeline, unit))["three_no"] is three_no
            for unit, three_no in expected.items()
        ]
        return all(shown)

    await wait_until(shown, timeout=30, message=f"reporting to show {expected}")


async def effect(pipeline: Pipeline, event_id: str, key: str) -> dict[str, Any]:
    assert pipeline.evaluation is not None
    response = await pipeline.evaluation.get(
        f"/v1/events/{event_id}/effect", headers=bearer(pipeline.keys[key])
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def step(
    pipeline: Pipeline, key: str, dispute_id: str, action: str, body: dict[str, Any]
) -> dict[str, Any]:
    """One step of the dispute, at the version the key last saw."""
    assert pipeline.cases is not None
    headers = bearer(pipeline.keys[key])
    shown = await pipeline.cases.get(f"/v1/disputes/{dispute_id}", headers=headers)
    assert shown.status_code == 200, shown.text
    response = await pipeline.cases.post(
        f"/v1/disputes/{dispute_id}/{action}",
        json=body,
        headers=headers | {"If-Match": shown.headers["ETag"]},
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def filed(pipeline: Pipeline, key: str, body: dict[str, Any]) -> dict[str, Any]:
    """The dispute filed once the cases service has read its event."""
    assert pipeline.cases is not None
    headers = bearer(pipeline.keys[key])

    async def attempt() -> dict[str, Any] | None:
        response = await pipeline.cases.post("/v1/disputes", json=body, headers=headers)
        if response.status_code == 404:
            return None
        assert response.status_code == 201, response.text
        found: dict[str, Any] = response.json()
        return found

    result: dict[str, Any] = await poll(attempt, timeout=30, message="the event to reach cases")
    return result


async def test_a_reattribution_upheld_then_reversed_on_review_moves_the_mark_and_back(
    pipeline: Pipeline,
) -> None:
    (event_id,) = await pipeline.post(pipeline.keys["village_desk"], reported_down(VILLAGE))
    await until_three_no(pipeline, {VILLAGE: False, TOWNSHIP: False, SIBLING_VILLAGE: True})
    before = await effect(pipeline, event_id, "village_desk")
    assert before["disputes"] == []

    body = dispute(event_id, proposed_unit=SIBLING_VILLAGE)
    await filed(pipeline, "village_desk", body)
    dispute_id = body["dispute_id"]

    async def listed_as_disputed() -> bool:
        return (await status(pipeline, VILLAGE))["disputed_event_ids"] == [event_id]

    await wait_until(listed_as_disputed, timeout=30, message="the village's status to list it")
    assert (await status(pipeline, VILLAGE))["three_no"] is False  # it counts until decided

    await step(
        pipeline,
        "county_bureau",
        dispute_id,
        "decide",
        {"decision": "uphold_reattribute", "new_unit": SIBLING_VILLAGE, "reason": "户籍核实"},
    )
    await until_three_no(
        pipeline,
        {VILLAGE: True, TOWNSHIP: True, SIBLING_VILLAGE: False, SIBLING_TOWNSHIP: False},
    )
    assert (await status(pipeline, VILLAGE))["disputed_event_ids"] == []
    assert (await status(pipeline, SIBLING_VILLAGE))["counting_event_ids"] == [event_id]
    moved = await effect(pipeline, event_id, "sibling_desk")
    assert moved["reason"] == f"re-attributed by dispute {dispute_id}"
    against = {c["unit_code"] for c in moved["counts_against"]}
    assert {SIBLING_VILLAGE, SIBLING_TOWNSHIP} <= against and VILLAGE not in against
    assert moved["disputes"] == [{"dispute_id": dispute_id, "state": "decided"}]

    assert pipeline.cases is not None
    own_review = await pipeline.cases.post(
        f"/v1/disputes/{dispute_id}/review-request",
        json={"reason": "复核本局决定"},
        headers=bearer(pipeline.keys["county_bureau"]) | {"If-Match": '"2"'},
    )
    assert own_review.status_code == 403, own_review.text  # the decider is not a side
    await step(pipeline, "sibling_desk", dispute_id, "review-request", {"reason": "不是本村的"})
    await step(
        pipeline,
        "city_bureau",
        dispute_id,
        "review",
        {"decision": "reject", "reason": "县局认定有误"},
    )
    await until_three_no(
        pipeline,
        {VILLAGE: False, TOWNSHIP: False, SIBLING_VILLAGE: True, SIBLING_TOWNSHIP: True},
    )
    back = await effect(pipeline, event_id, "village_desk")
    assert back["state"] == "applied" and back.get("reason") is None
    assert back["disputes"] == [{"dispute_id": dispute_id, "state": "reviewed"}]


async def test_a_rejected_dispute_upheld_on_review_voids_the_event(pipeline: Pipeline) -> None:
    (event_id,) = await pipeline.post(pipeline.keys["third_desk"], reported_down(THIRD_VILLAGE))
    await until_three_no(pipeline, {THIRD_VILLAGE: False})
    body = dispute(event_id, grounds="facts", proposed_unit=None)
    await filed(pipeline, "third_desk", body)
    dispute_id = body["dispute_id"]

    await step(
        pipeline, "county_bureau", dispute_id, "decide", {"decision": "reject", "reason": "属实"}
    )
    await step(pipeline, "third_desk", dispute_id, "review-request", {"reason": "当日无人上访"})
    assert (await status(pipeline, THIRD_VILLAGE))["three_no"] is False
    await step(
        pipeline,
        "city_bureau",
        dispute_id,
        "review",
        {"decision": "uphold_void", "reason": "经核查不属实"},
    )

    await until_three_no(pipeline, {THIRD_VILLAGE: True})
    voided = await effect(pipeline, event_id, "third_desk")
    assert voided["state"] == "voided"
    assert voided["reason"] == f"voided by dispute {dispute_id}"


@pytest.mark.parametrize(
    ("reported_at", "last_day"),
    [
        # The National Day week of 2026: 10-01 to 10-07 off, Saturday 10-10 worked.
        ("2026-09-30T10:00:00+08:00", "2026-10-13"),
        # Sunday 09-20 is a make-up working day.
        ("2026-09-18T10:00:00+08:00", "2026-09-24"),
    ],
)
async def test_the_effect_says_until_when_a_counting_event_may_be_disputed(
    pipeline: Pipeline, reported_at: str, last_day: str
) -> None:
    visit = reported_down(FOURTH_VILLAGE) | {"reported_at": reported_at}
    (event_id,) = await pipeline.post(pipeline.keys["county_desk"], visit)
    await pipeline.evaluated()

    shown = await effect(pipeline, event_id, "county_reader")

    assert shown["dispute_until"] == last_day
    assert "dispute_until_reason" not in shown
