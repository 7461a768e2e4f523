"""The petitioner's rating of a case's reply is also a satisfaction_rating work record of the
case's unit: intake reads it from the cases topic and journals it once, under an id keyed from
the case, however often the step is read."""

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.intake.case_ratings import NAMESPACE
from services.intake.config import IntakeSettings
from services.intake.main import create_app as create_intake_app
from shared.config import Settings
from shared.db import Database
from tests.cases.test_cases import Desk, on, registered
from tests.support.app import bearer, serve
from tests.support.cases import TOWNSHIP, VILLAGE, RunningCases
from tests.support.waiting import poll

JOURNALED_SQL = "SELECT payload, key_id FROM intake.journal WHERE event_id = $1"


@pytest.fixture
async def rating_intake(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    reading = IntakeSettings(intake_run_relay=False, intake_run_case_ratings=True)
    async with serve(create_intake_app(reading), "http://intake") as client:
        yield client


async def test_a_rating_is_journaled_once_as_the_units_satisfaction_rating(
    disputes_app: RunningCases,
    handler_keys: dict[str, str],
    rating_intake: httpx.AsyncClient,
    db: Database,
) -> None:
    desk = Desk(disputes_app, handler_keys)
    case = await registered(desk, received_at=on(6, 1))
    for key, path, body in [
        ("township_desk", "route", {"to": {"unit_code": TOWNSHIP, "body": "民政"}, "at": on(6, 2)}),
        ("township_civil", "accept", {"reason": "受理", "notified_at": on(6, 3), "at": on(6, 3)}),
        ("township_civil", "reply", {"outcome": "support", "text": "已解决", "at": on(6, 20)}),
        ("township_desk", "rate", {"rating": "basically_satisfied", "at": on(6, 22)}),
    ]:
        case = await desk.took(key, case, path, **body)
    record_id = uuid.uuid5(NAMESPACE, f"{case['case_id']}/rating")

    async def journaled() -> list[object] | None:
        async with db.connection() as connection:
            rows = await connection.fetch(JOURNALED_SQL, record_id)
        return list(rows) or None

    (row,) = await poll(journaled, timeout=30, message="the rating journaled by intake")
    payload = row["payload"]
    assert '"type": "satisfaction_rating"' in payload or '"type":"satisfaction_rating"' in payload
    assert VILLAGE in payload and "basically_satisfied" in payload and "petitioner" in payload
    assert row["key_id"] == "cases-service"
    shown = await rating_intake.get(
        f"/v1/events/{record_id}", headers=bearer(handler_keys["admin"])
    )
    assert shown.status_code == 200, shown.text
