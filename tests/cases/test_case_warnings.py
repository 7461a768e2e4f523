"""Early warnings from cases' clocks: a duty 2 days from its last day raises case_due_soon on
the unit the case is with, the step that does it clears it; a duty past its last day raises
case_overdue; the watch raises them as the days pass; every change reaches the warning topic."""

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, time
from typing import Any

import orjson
import pytest

from shared.campaign import SHANGHAI
from shared.config import Settings
from shared.db import Database
from tests.support.app import bearer
from tests.support.cases import TOWNSHIP, VILLAGE, MovableClock, RunningCases, running_cases
from tests.support.stack import read_topic
from tests.support.waiting import wait_until

NOW = datetime.combine(date(2026, 12, 14), time(10), tzinfo=SHANGHAI)


@pytest.fixture
async def on_12_14(
    settings: Settings, handler_keys: dict[str, str]
) -> AsyncIterator[tuple[RunningCases, MovableClock]]:
    clock = MovableClock(NOW)
    async with running_cases(settings, key=handler_keys["township_desk"], today=clock) as app:
        yield app, clock


def on(month: int, day: int) -> str:
    return datetime.combine(date(2026, month, day), time(9), tzinfo=SHANGHAI).isoformat()


async def registered(app: RunningCases, received: str) -> dict[str, Any]:
    response = await app.client.post(
        "/v1/cases",
        json={
            "case_id": str(uuid.uuid4()),
            "unit_code": VILLAGE,
            "received_at": received,
            "channel": "phone",
            "category": "拖欠工资",
            "petitioner_ref": uuid.uuid4().hex,
            "summary": "工资被拖欠三个月",
        },
    )
    assert response.status_code == 201, response.text
    case: dict[str, Any] = response.json()
    return case


async def warnings_of(db: Database, case_id: str) -> dict[str, str | None]:
    """kind -> cleared_at, as the service keeps them."""
    async with db.connection() as connection:
        rows = await connection.fetch(
            "SELECT kind, cleared_at FROM cases.case_warning WHERE case_id = $1",
            uuid.UUID(case_id),
        )
    return {row["kind"]: row["cleared_at"] and row["cleared_at"].isoformat() for row in rows}


async def published(settings: Settings, case_id: str) -> list[dict[str, Any]]:
    found = []
    for _, _, value, _ in await read_topic(settings, settings.warning_topic, timeout=10):
        warning = orjson.loads(value)
        # The topic is shared with other tests, some of which publish messages that are not
        # warnings (to see them dead-lettered).
        detail = warning.get("detail") if isinstance(warning, dict) else None
        if isinstance(detail, dict) and detail.get("case_id") == case_id:
            found.append(warning)
    return found


async def test_a_route_due_in_two_days_warns_the_township_and_routing_clears_it(
    on_12_14: tuple[RunningCases, MovableClock], db: Database, settings: Settings
) -> None:
    app, _ = on_12_14
    case = await registered(app, on(12, 1))  # route due 12-16
    assert case["clocks"][0]["due_soon"] is True
    assert await warnings_of(db, case["case_id"]) == {"case_due_soon": None}

    routed = await app.client.post(
        f"/v1/cases/{case['case_id']}/route",
        json={"to": {"unit_code": TOWNSHIP, "body": "民政"}},
        headers={"If-Match": '"1"'},
    )

    assert routed.status_code == 200, routed.text
    kept = await warnings_of(db, case["case_id"])
    assert kept["case_due_soon"] is not None  # cleared

    async def both_published() -> bool:
        return len(await published(settings, case["case_id"])) == 2

    await wait_until(both_published, timeout=20, message="the raise and the clear published")
    raised, cleared = await published(settings, case["case_id"])
    assert (raised["kind"], raised["unit_code"], raised["version"]) == (
        "case_due_soon",
        TOWNSHIP,
        1,
    )
    assert cleared["version"] == 2 and cleared["cleared_at"] is not None
    assert raised["warning_id"] == cleared["warning_id"] and raised["event_ids"] == []


async def test_a_duty_past_its_last_day_warns_overdue_when_the_watch_comes_by(
    on_12_14: tuple[RunningCases, MovableClock], db: Database, handler_keys: dict[str, str]
) -> None:
    app, clock = on_12_14
    case = await registered(app, on(12, 10))  # route due 12-25: nothing yet
    assert await warnings_of(db, case["case_id"]) == {}

    clock.days = 9  # 12-23: two days left
    await app.app.state.clock_watch.round()
    assert await warnings_of(db, case["case_id"]) == {"case_due_soon": None}
    clock.days = 12  # 12-26: overdue
    await app.app.state.clock_watch.round()

    kept = await warnings_of(db, case["case_id"])
    assert kept["case_overdue"] is None and kept["case_due_soon"] is not None
    overdue = await app.client.get(
        "/v1/cases",
        params={"overdue": "true", "root": TOWNSHIP},
        headers=bearer(handler_keys["county_bureau"]),
    )
    assert case["case_id"] in {c["case_id"] for c in overdue.json()["cases"]}
