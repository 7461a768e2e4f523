"""A county's case rates from a fixed set of 22 past cases of 2026, judged on 2026-12-07 on
the 2026 calendar, against figures counted by hand below (not by the service's code).

The county 县0101 of the generated province: townships 乡镇0101-01 (T1) and 乡镇0101-02 (T2).
Every case is registered by the county's desk and routed to the county's 民政 body.

 #  unit        received  routed  accepted      replied      rated          counts as
 1  T1 village  03-02     03-05   03-10         04-20        satisfied      A met, R met, rated
 2  T1 village  03-02     03-05   03-10         04-20        basically      A met, R met, rated
 3  T1 village  03-02     03-05   03-10         04-20        dissatisfied   A met, R met, rated
 4  T1 village  03-02     03-03   03-25 (late)  04-01        -              A late, R met, lapsed
 5  T1 village  05-04     05-06   -             -            -              A overdue
 6  T1 village  06-01     -       -             -            -              A overdue (not routed)
 7  T1 village  06-01     06-02   declined 06-05, closed 06-10              A met
 8  T1 village  07-01     07-01   07-02         09-10 (late) satisfied      A met, R late, rated
 9  T1 village  07-01     07-01   07-02         -            -              A met, R overdue
10  T1 village  07-01     07-01   07-02, +30    09-25        dissatisfied   A met, R met, rated
11  T1 village  03-15: the matter of 1 again                                repeat
12  T1 village  04-01: the matter of 3 again                                repeat
13  county      08-03     08-04   08-05         08-20        satisfied      A met, R met, rated
14  county      08-03     08-04   08-25 (late)  09-01        -              A late, R met, lapsed
15  county      10-09     10-09   10-26 (met*)  11-02        basically      A met, R met, rated
16  T2          11-20     -       -             -            -              A not yet due (12-07)
17  T2          12-01     -       -             -            -              A not yet due
18  T2 village  10-19     10-19   10-20         -            -              A met, R not yet due
19  T2 village  10-09     10-10   10-12         12-01        -              A met, R met, Rt wait
20  county      09-01: the matter of 13 again                               repeat
21  T1 village  06-20: the matter of 7 again, after it was closed           refused (a repeat)
22  T1 village  04-01     04-02   04-03         05-10        satisfied      A met, R met, rated

A: acceptance, R: reply, Rt wait: the rating window still open. *: the 15th day, 10-24, is a
Saturday, so the last day is Monday 10-26.
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime, time
from typing import Any

import httpx
import pytest

from services.cases.cases import reports
from shared.access.models import Role
from shared.campaign import SHANGHAI
from shared.config import Settings
from shared.db import Database
from tests.support.app import bearer
from tests.support.cases import RunningCases, county_with_civil_affairs, running_cases
from tests.support.waiting import poll

COUNTY = "350101000000"
T1, T2, T3 = "350101100000", "350101101000", "350101102000"
T1_VILLAGE, T2_VILLAGE = "350101100201", "350101101201"
TODAY = datetime.combine(date(2026, 12, 7), time(10), tzinfo=SHANGHAI)


def on(month: int, day: int) -> str:
    return datetime.combine(date(2026, month, day), time(9), tzinfo=SHANGHAI).isoformat()


@pytest.fixture(scope="module")
async def county_keys(db: Database, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return await county_with_civil_affairs(
        db,
        tmp_path_factory.mktemp("bodies"),
        county=COUNTY,
        name="县0101民政局",
        reader=Role.reader,
    )


@pytest.fixture(scope="module")
async def on_12_07(settings: Settings, county_keys: dict[str, str]) -> AsyncIterator[RunningCases]:
    async with running_cases(
        settings, key=county_keys["reader"], today=TODAY, workers=False
    ) as app:
        yield app


class County:
    def __init__(self, app: RunningCases, keys: dict[str, str]) -> None:
        self.client = app.client
        self.keys = keys

    async def register(self, unit: str, received: str, matter: str | None = None) -> dict[str, Any]:
        body = {
            "case_id": str(uuid.uuid4()),
            "unit_code": unit,
            "received_at": received,
            "channel": "visit",
            "category": "社会保障",
            "petitioner_ref": matter or uuid.uuid4().hex,
            "summary": "低保待遇",
        }
        response = await self.client.post("/v1/cases", json=body, headers=bearer(self.keys["desk"]))
        assert response.status_code == 201, response.text
        found: dict[str, Any] = response.json()
        found["matter"] = body["petitioner_ref"]
        return found

    async def step(self, case: dict[str, Any], key: str, path: str, **body: Any) -> dict[str, Any]:
        response = await self.client.post(
            f"/v1/cases/{case['case_id']}/{path}",
            json=body,
            headers=bearer(self.keys[key]) | {"If-Match": f'"{case["version"]}"'},
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json() | {"matter": case["matter"]}
        return found

    async def case(
        self, unit: str, *dates: str | None, rating: str | None = None
    ) -> dict[str, Any]:
        """Registered on the first date, then routed, accepted, replied, rated on the next
        ones, as far as they are given."""
        received, routed, accepted, replied, rated = (*dates, None, None, None, None)[:5]
        assert received is not None
        case = await self.register(unit, received)
        if routed:
            case = await self.step(
                case, "desk", "route", to={"unit_code": COUNTY, "body": "民政"}, at=routed
            )
        if accepted:
            case = await self.step(
                case, "body", "accept", reason="受理", notified_at=accepted, at=accepted
            )
        if replied:
            case = await self.step(
                case, "body", "reply", outcome="support", text="已办理", at=replied
            )
        if rated:
            case = await self.step(case, "desk", "rate", rating=rating, at=rated)
        return case


async def the_22_cases(county: County) -> None:
    c = county
    first = await c.case(
        T1_VILLAGE, on(3, 2), on(3, 5), on(3, 10), on(4, 20), on(4, 25), rating="satisfied"
    )
    await c.case(
        T1_VILLAGE,
        on(3, 2),
        on(3, 5),
        on(3, 10),
        on(4, 20),
        on(4, 25),
        rating="basically_satisfied",
    )
    third = await c.case(
        T1_VILLAGE, on(3, 2), on(3, 5), on(3, 10), on(4, 20), on(4, 25), rating="dissatisfied"
    )
    await c.case(T1_VILLAGE, on(3, 2), on(3, 3), on(3, 25), on(4, 1))
    await c.case(T1_VILLAGE, on(5, 4), on(5, 6))
    await c.case(T1_VILLAGE, on(6, 1))
    seventh = await c.case(T1_VILLAGE, on(6, 1), on(6, 2))
    seventh = await c.step(
        seventh,
        "body",
        "decline",
        reason="不属受理范围",
        channel="人民法院",
        notified_at=on(6, 5),
        at=on(6, 5),
    )
    await c.step(seventh, "desk", "close", at=on(6, 10))
    await c.case(T1_VILLAGE, on(7, 1), on(7, 1), on(7, 2), on(9, 10), on(9, 12), rating="satisfied")
    await c.case(T1_VILLAGE, on(7, 1), on(7, 1), on(7, 2))
    tenth = await c.case(T1_VILLAGE, on(7, 1), on(7, 1), on(7, 2))
    tenth = await c.step(tenth, "body", "extend", days=30, reason="情况复杂", at=on(8, 20))
    tenth = await c.step(tenth, "body", "reply", outcome="explain", text="解释", at=on(9, 25))
    await c.step(tenth, "desk", "rate", rating="dissatisfied", at=on(9, 28))
    assert (await c.register(T1_VILLAGE, on(3, 15), first["matter"]))["state"] == "repeat"
    assert (await c.register(T1_VILLAGE, on(4, 1), third["matter"]))["state"] == "repeat"
    thirteenth = await c.case(
        COUNTY, on(8, 3), on(8, 4), on(8, 5), on(8, 20), on(8, 21), rating="satisfied"
    )
    await c.case(COUNTY, on(8, 3), on(8, 4), on(8, 25), on(9, 1))
    await c.case(
        COUNTY, on(10, 9), on(10, 9), on(10, 26), on(11, 2), on(11, 3), rating="basically_satisfied"
    )
    await c.case(T2, on(11, 20))
    await c.case(T2, on(12, 1))
    await c.case(T2_VILLAGE, on(10, 19), on(10, 19), on(10, 20))
    await c.case(T2_VILLAGE, on(10, 9), on(10, 10), on(10, 12), on(12, 1))
    assert (await c.register(COUNTY, on(9, 1), thirteenth["matter"]))["state"] == "repeat"
    assert (await c.register(T1_VILLAGE, on(6, 20), seventh["matter"]))["state"] == "refused"
    await c.case(T1_VILLAGE, on(4, 1), on(4, 2), on(4, 3), on(5, 10), on(5, 11), rating="satisfied")


def rate(numerator: int, denominator: int, not_yet_due: int = 0) -> dict[str, Any]:
    value = numerator / denominator if denominator else None
    return {
        "numerator": numerator,
        "denominator": denominator,
        "rate": value,
        "not_yet_due": not_yet_due,
    }


async def test_the_countys_rates_are_those_counted_by_hand(
    on_12_07: RunningCases, county_keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await the_22_cases(County(on_12_07, county_keys))

    response = await on_12_07.client.get(
        "/v1/reports/case-rates", params={"root": COUNTY, "period": "2026"}
    )

    assert response.status_code == 200, response.text
    found = response.json()
    assert found["rates"] == {
        "timely_acceptance": rate(12, 16, not_yet_due=2),
        "on_time_reply": rate(10, 12, not_yet_due=1),
        "rating_participation": rate(8, 10, not_yet_due=1),
        "satisfaction": rate(6, 8, not_yet_due=1),
        "repeat": rate(4, 22),
    }
    assert found["levels"]["county"]["rates"] == {
        "timely_acceptance": rate(2, 3),
        "on_time_reply": rate(3, 3),
        "rating_participation": rate(2, 3),
        "satisfaction": rate(2, 2),
        "repeat": rate(1, 4),
    }
    children = {child["unit_code"]: child["rates"] for child in found["children"]}
    assert children[T2] == {
        "timely_acceptance": rate(2, 2, not_yet_due=2),
        "on_time_reply": rate(1, 1, not_yet_due=1),
        "rating_participation": rate(0, 0, not_yet_due=1),
        "satisfaction": rate(0, 0, not_yet_due=1),
        "repeat": rate(0, 4),
    }
    assert children[T3]["repeat"] == rate(0, 0)
    county = County(on_12_07, county_keys)
    await county.register(T3, on(12, 2))  # a new case: the rates read again count it
    again = await on_12_07.client.get(
        "/v1/reports/case-rates", params={"root": COUNTY, "period": "2026"}
    )
    assert again.json()["rates"]["repeat"] == rate(4, 23)

    # A memo of judged cases smaller than the county's cases starts again: the same figures.
    monkeypatch.setattr(reports, "JUDGED_KEPT", 5)
    await county.register(T3, on(12, 3))
    bounded = await on_12_07.client.get(
        "/v1/reports/case-rates", params={"root": COUNTY, "period": "2026"}
    )
    assert bounded.json()["rates"] == {
        "timely_acceptance": rate(12, 16, not_yet_due=4),
        "on_time_reply": rate(10, 12, not_yet_due=1),
        "rating_participation": rate(8, 10, not_yet_due=1),
        "satisfaction": rate(6, 8, not_yet_due=1),
        "repeat": rate(4, 24),
    }


async def test_rates_outside_the_keys_scope_or_of_an_unknown_period_are_refused(
    on_12_07: RunningCases, county_keys: dict[str, str], keys: dict[str, str]
) -> None:
    client: httpx.AsyncClient = on_12_07.client
    outside = await client.get(
        "/v1/reports/case-rates",
        params={"root": "340722000000", "period": "2026"},
        headers=bearer(county_keys["reader"]),
    )
    unknown = await client.get("/v1/reports/case-rates", params={"root": COUNTY, "period": "1999"})

    assert outside.status_code == 403
    assert unknown.status_code == 404


async def test_kept_rates_follow_a_step_taken_in_another_process_of_the_service(
    on_12_07: RunningCases, county_keys: dict[str, str], settings: Settings
) -> None:
    async def repeats() -> int:
        found = await on_12_07.client.get(
            "/v1/reports/case-rates", params={"root": COUNTY, "period": "2026"}
        )
        count: int = found.json()["rates"]["repeat"]["denominator"]
        return count

    before = await repeats()
    async with running_cases(
        settings, key=county_keys["reader"], today=TODAY, workers=False
    ) as other:
        await County(other, county_keys).register(T3, on(12, 3))

    seen = await poll(
        lambda: _more(repeats, before), timeout=10, message="the other process's case counted"
    )
    assert seen == before + 1


async def _more(read: Callable[[], Awaitable[int]], than: int) -> int | None:
    found = await read()
    return found if found > than else None
