"""The calendar as the cases service keeps it: seeded from the holiday package, extended and
overridden by local files with `sanwu calendar load`, served, and never guessed for a year it
lacks."""

from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path

import pytest

from shared.campaign import DISPUTE_WINDOW, SHANGHAI
from shared.config import Settings
from shared.db import Database
from tests.support.cases import (
    RunningCases,
    forget_day,
    forget_year,
    running_cases,
    sanwu_calendar,
)
from tests.support.metrics import sample
from tests.support.waiting import poll

# A day of December 2026: the calendar must cover 2026 and 2027.
TODAY = datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)
NOT_COMPUTABLE = "sanwu_deadlines_not_computable_total"


@pytest.fixture
async def cases(settings: Settings, keys: dict[str, str]) -> AsyncIterator[RunningCases]:
    async with running_cases(
        settings, key=keys["township_reader"], today=TODAY, workers=False
    ) as running:
        yield running


async def test_the_seeded_2026_calendar_has_the_national_day_week(cases: RunningCases) -> None:
    response = await cases.client.get("/v1/calendar/2026")

    assert response.status_code == 200, response.text
    body = response.json()
    days_off = {day["date"] for day in body["days_off"]}
    assert {f"2026-10-0{n}" for n in range(1, 8)} <= days_off
    worked = {day["date"] for day in body["make_up_working_days"]}
    assert {"2026-09-20", "2026-10-10"} <= worked
    assert body["source"].startswith("chinesecalendar")


async def test_five_working_days_on_the_seeded_calendar(cases: RunningCases) -> None:
    after_eve = await cases.deadlines.last_day(date(2026, 9, 30), DISPUTE_WINDOW, name="dispute")
    over_sunday = await cases.deadlines.last_day(date(2026, 9, 18), DISPUTE_WINDOW, name="dispute")

    assert after_eve.last_day == date(2026, 10, 13)
    assert over_sunday.last_day == date(2026, 9, 24)


async def test_a_year_not_loaded_is_not_found(cases: RunningCases) -> None:
    response = await cases.client.get("/v1/calendar/2031")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "2031" in response.json()["detail"]


async def test_the_calendar_needs_a_key(cases: RunningCases) -> None:
    response = await cases.client.get("/v1/calendar/2026", headers={"Authorization": ""})

    assert response.status_code == 401


async def test_loading_the_missing_next_year_fixes_deadlines_and_readiness_without_restart(
    cases: RunningCases, db: Database, tmp_path: Path
) -> None:
    before = await sample(cases.client, NOT_COMPUTABLE, limit="dispute")
    missing = await cases.deadlines.last_day(date(2026, 12, 28), DISPUTE_WINDOW, name="dispute")
    ready = (await cases.client.get("/readyz")).json()

    assert missing.last_day is None and missing.missing_year == 2027
    assert await sample(cases.client, NOT_COMPUTABLE, limit="dispute") == before + 1
    assert ready["status"] == "degraded" and ready["checks"]["calendar"] is False
    assert (await cases.client.get("/v1/calendar/2027")).status_code == 404

    year_2027 = tmp_path / "2027.csv"
    year_2027.write_text("date,kind,name\n2027-01-01,holiday,元旦\n", encoding="utf-8")
    try:
        loaded = await sanwu_calendar("load", str(year_2027))
        assert loaded.returncode == 0, loaded.stderr

        async def computed() -> date | None:
            deadline = await cases.deadlines.last_day(
                date(2026, 12, 28), DISPUTE_WINDOW, name="dispute"
            )
            return deadline.last_day

        # 12-29, 12-30, 12-31, then 01-01 off and a weekend: 01-04 and 01-05.
        in_use: date | None = await poll(computed, timeout=10, message="2027 in use")
        assert in_use == date(2027, 1, 5)
        ready = (await cases.client.get("/readyz")).json()
        assert ready["status"] == "ready" and ready["checks"]["calendar"] is True
        served = (await cases.client.get("/v1/calendar/2027")).json()
        assert served["days_off"][0]["date"] == "2027-01-01"
        assert served["source"] == "file 2027.csv"
        status = await sanwu_calendar("status")
        assert status.returncode == 0, status.stderr
        assert "2027\tfile 2027.csv" in status.stdout
        assert status.stdout.startswith("2004\tchinesecalendar")
    finally:
        await forget_year(db, 2027)


async def test_a_local_day_off_moves_deadlines_and_survives_seeding(
    cases: RunningCases, db: Database, tmp_path: Path
) -> None:
    # 2026 is covered by the package; a local file adds a day off on Monday 11-02, which the
    # package's schedule loaded again keeps.
    override = tmp_path / "local.csv"
    override.write_text("date,kind,name\n2026-11-02,holiday,local\n", encoding="utf-8")
    try:
        loaded = await sanwu_calendar("load", str(override))
        assert loaded.returncode == 0, loaded.stderr

        async def computed() -> date | None:
            deadline = await cases.deadlines.last_day(
                date(2026, 10, 30), DISPUTE_WINDOW, name="dispute"
            )
            return deadline.last_day if deadline.last_day != date(2026, 11, 6) else None

        moved: date | None = await poll(computed, timeout=10, message="the local day off")
        assert moved == date(2026, 11, 9)
        seeded = await sanwu_calendar("seed")
        assert seeded.returncode == 0, seeded.stderr
        kept = await cases.deadlines.last_day(date(2026, 10, 30), DISPUTE_WINDOW, name="dispute")
        assert kept.last_day == date(2026, 11, 9)
    finally:
        await forget_day(db, date(2026, 11, 2))


async def test_a_file_with_a_bad_line_loads_nothing(cases: RunningCases, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "date,kind,name\n2029-01-01,holiday,元旦\n2029-02-30,holiday,x\n2029-03-01,rest,y\n",
        encoding="utf-8",
    )

    result = await sanwu_calendar("load", str(bad))

    assert result.returncode == 1
    assert "line 3" in result.stderr and "line 4" in result.stderr
    assert (await cases.client.get("/v1/calendar/2029")).status_code == 404
