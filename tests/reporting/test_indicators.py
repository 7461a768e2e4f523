"""Work-record indicators (docs/domain.md section 7) as reporting serves them from the indicator
topic: the meeting cadence of a unit as of today, the satisfaction of its subtree, the summary's
figures per level and the export columns."""

import csv
import io
from datetime import date, datetime, timedelta
from typing import Any

import openpyxl
import pytest

from services.reporting.config import ReportingSettings
from services.reporting.main import create_app
from shared.campaign import SHANGHAI
from shared.events import RatingSource
from shared.indicators import UnitIndicators
from tests.conftest import COUNTY, SIBLING_VILLAGE, TOWNSHIP, VILLAGE, bearer, serve
from tests.reporting.conftest import PLAN_PERIOD
from tests.reporting.test_access import assert_problem
from tests.support.dead_letters import dead_letter_reasons
from tests.support.reporting import (
    Reporting,
    StatusPublisher,
    demo_villages,
    indicators,
    wait_committed,
)

PETITIONER, THIRD_PARTY = RatingSource.petitioner, RatingSource.third_party
PLAN = PLAN_PERIOD  # the plan's 2018 dates: 36 weeks, 16 half-months, 8 months


def weeks(first: date, last: date) -> list[date]:
    """Mondays from `first` (a Monday) to `last`."""
    return [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]


def half_months(year: int, months: range) -> list[date]:
    return [date(year, m, d) for m in months for d in (1, 16)]


async def publish(
    reporting: Reporting, publisher: StatusPublisher, *messages: UnitIndicators
) -> None:
    sent = await publisher.publish_indicators(*messages)
    await wait_committed(
        reporting.settings, sent, group=reporting.settings.indicator_consumer_group
    )


async def read(reporting: Reporting, key: str, code: str, period: str) -> dict[str, Any]:
    response = await reporting.get(f"/v1/units/{code}/indicators", key, period=period)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_village_with_35_of_its_36_weeks_misses_that_weeks_monday(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    slots = weeks(date(2018, 4, 30), date(2018, 12, 31))
    assert len(slots) == 36
    missing = date(2018, 7, 16)
    await publish(
        reporting,
        publisher,
        indicators(VILLAGE, PLAN, 1, meetings_held=[s for s in slots if s != missing]),
    )

    body = await read(reporting, keys["township_reader"], VILLAGE, PLAN)

    assert body["meetings"] == {
        "cadence": "week",
        "required": 36,
        "held": 35,
        "missed": ["2018-07-16"],
        "open": None,
        "compliance": pytest.approx(35 / 36),
        "kept": False,
    }
    assert body["unit"]["code"] == VILLAGE and body["period"] == PLAN
    assert body["version"] == 1


async def test_a_township_has_16_half_months_and_a_county_8_months_in_2018(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    township_slots = half_months(2018, range(5, 13))
    county_slots = [date(2018, m, 1) for m in range(5, 13)]
    await publish(
        reporting,
        publisher,
        indicators(TOWNSHIP, PLAN, 1, meetings_held=township_slots),
        indicators(COUNTY, PLAN, 1, meetings_held=county_slots[:-1]),
    )

    township = (await read(reporting, keys["county_reader"], TOWNSHIP, PLAN))["meetings"]
    county = (await read(reporting, keys["county_reader"], COUNTY, PLAN))["meetings"]

    assert township["cadence"] == "half_month"
    assert (township["required"], township["held"], township["missed"]) == (16, 16, [])
    assert township["kept"] is True and township["compliance"] == 1.0
    assert county["cadence"] == "month"
    assert (county["required"], county["held"], county["missed"]) == (8, 7, ["2018-12-01"])


async def test_the_rolling_period_has_an_open_slot_and_only_the_windows_slots(
    reporting_settings: ReportingSettings,
    reporting: Reporting,
    publisher: StatusPublisher,
    keys: dict[str, str],
) -> None:
    # As of Wednesday 2026-06-10 the window starts inside 2025-06-10, so its first slot is
    # the week of Monday 2025-06-16; the week of 2026-06-08 is still running.
    now = datetime(2026, 6, 10, 12, 0, tzinfo=SHANGHAI)
    slots = weeks(date(2025, 6, 16), date(2026, 6, 8))
    missing = date(2025, 12, 1)
    held = [date(2025, 6, 9), *[s for s in slots if s != missing]]  # one before the window
    await publish(
        reporting, publisher, indicators(SIBLING_VILLAGE, "rolling", 1, meetings_held=held)
    )
    settings = reporting_settings.model_copy(update={"reporting_run_consumer": False})

    async with serve(create_app(settings, clock=lambda: now), "http://reporting") as client:
        response = await client.get(
            f"/v1/units/{SIBLING_VILLAGE}/indicators",
            params={"period": "rolling"},
            headers=bearer(keys["sibling_reader"]),
        )

    assert response.status_code == 200, response.text
    meetings = response.json()["meetings"]
    assert meetings["required"] == len(slots) == 52
    assert meetings["open"] == "2026-06-08"
    assert meetings["held"] == 50  # the open week's meeting is not counted yet
    assert meetings["missed"] == ["2025-12-01"]
    assert meetings["compliance"] == pytest.approx(50 / 51)


async def test_ratings_three_one_one_give_a_rate_of_0_8_in_all_and_per_source(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    village = demo_villages(TOWNSHIP)[2]
    ratings = {PETITIONER: (2, 1, 0), THIRD_PARTY: (1, 0, 1)}
    await publish(reporting, publisher, indicators(village, PLAN, 1, ratings=ratings))

    satisfaction = (await read(reporting, keys["township_reader"], village, PLAN))["satisfaction"]

    assert satisfaction["total"] == 5
    assert (satisfaction["satisfied"], satisfaction["basically_satisfied"]) == (3, 1)
    assert satisfaction["dissatisfied"] == 1
    assert satisfaction["rate"] == pytest.approx(0.8)
    by_source = satisfaction["by_source"]
    assert by_source["petitioner"] == {
        "total": 3,
        "satisfied": 2,
        "basically_satisfied": 1,
        "dissatisfied": 0,
        "rate": 1.0,
    }
    assert by_source["third_party"]["rate"] == 0.5
    assert by_source["representative"]["total"] == 0
    assert by_source["representative"]["rate"] is None


async def test_an_older_or_equal_version_after_a_newer_one_changes_nothing(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    village = demo_villages(TOWNSHIP)[3]
    newer = indicators(village, PLAN, 2, ratings={PETITIONER: (1, 0, 0)})
    await publish(
        reporting,
        publisher,
        newer,
        indicators(village, PLAN, 1, ratings={PETITIONER: (0, 0, 9)}),
        indicators(village, PLAN, 2, ratings={PETITIONER: (0, 0, 7)}),
    )

    body = await read(reporting, keys["township_reader"], village, PLAN)

    assert body["version"] == 2
    assert body["satisfaction"]["total"] == 1 and body["satisfaction"]["rate"] == 1.0

    await publish(reporting, publisher, indicators(village, PLAN, 3, ratings={}))
    assert (await read(reporting, keys["township_reader"], village, PLAN))["version"] == 3


async def test_a_unit_without_indicators_missed_every_slot_and_has_no_rate(
    reporting: Reporting, keys: dict[str, str]
) -> None:
    village = demo_villages(TOWNSHIP)[4]

    body = await read(reporting, keys["township_reader"], village, PLAN)

    assert body["meetings"]["required"] == 36 and body["meetings"]["held"] == 0
    assert len(body["meetings"]["missed"]) == 36 and body["meetings"]["compliance"] == 0
    assert body["satisfaction"]["total"] == 0 and body["satisfaction"]["rate"] is None
    assert body["version"] == 0 and body["changed_at"] is None


@pytest.mark.parametrize(
    ("url", "params", "key", "status_code"),
    [
        (f"/v1/units/{SIBLING_VILLAGE}/indicators", {"period": PLAN}, "township_reader", 403),
        (f"/v1/units/{COUNTY}/indicators", {"period": PLAN}, "township_reader", 403),
        ("/v1/units/340722999999/indicators", {"period": PLAN}, "admin", 404),
        (f"/v1/units/{VILLAGE}/indicators", {"period": "1999"}, "admin", 404),
        (f"/v1/units/{COUNTY[:4]}00000000/indicators", {"period": PLAN}, "admin", 422),
        ("/v1/units/3407221002/indicators", {"period": PLAN}, "admin", 422),
        (f"/v1/units/{VILLAGE}/indicators", {}, "admin", 422),
    ],
)
async def test_indicators_are_refused_like_statuses(
    reporting: Reporting,
    keys: dict[str, str],
    url: str,
    params: dict[str, str],
    key: str,
    status_code: int,
) -> None:
    body = assert_problem(await reporting.get(url, keys[key], **params), status_code)
    assert "meetings" not in body


async def test_malformed_indicators_are_dead_lettered_and_store_nothing(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    village = demo_villages(TOWNSHIP)[5]
    good = indicators(village, PLAN, 1, ratings={PETITIONER: (1, 0, 0)})
    sent = await publisher.publish_raw(
        [
            (b"not-the-key", good.model_dump_json().encode()),
            (good.key, b"{not json"),
            (good.key, None),
        ],
        topic=reporting.settings.indicator_topic,
    )
    await wait_committed(
        reporting.settings, sent, group=reporting.settings.indicator_consumer_group
    )

    body = await read(reporting, keys["township_reader"], village, PLAN)
    assert body["version"] == 0 and body["satisfaction"]["total"] == 0
    reasons = await dead_letter_reasons(reporting.settings, sent, by="reporting-indicators")
    assert None not in reasons, reasons


# --- the summary and the exports --------------------------------------------------------------

PERIOD = "t-records"  # 2019: 52 weeks from Monday 2019-01-07, 24 half-months, 12 months
WEEKS_2019 = weeks(date(2019, 1, 7), date(2019, 12, 30))


@pytest.fixture(scope="module")
async def records_published(reporting: Reporting, publisher: StatusPublisher) -> list[str]:
    """Under the township: two villages keep their cadence, one misses a week, one only has
    ratings; the township keeps its half-months. Ratings: 3/1/1 and 0/0/5 in the villages."""
    villages = demo_villages(TOWNSHIP)[6:10]
    assert len(WEEKS_2019) == 52
    await publish(
        reporting,
        publisher,
        indicators(
            villages[0], PERIOD, 1, meetings_held=WEEKS_2019, ratings={PETITIONER: (3, 1, 1)}
        ),
        indicators(villages[1], PERIOD, 1, meetings_held=WEEKS_2019),
        indicators(villages[2], PERIOD, 1, meetings_held=WEEKS_2019[1:]),
        indicators(villages[3], PERIOD, 1, ratings={THIRD_PARTY: (0, 0, 5)}),
        indicators(
            TOWNSHIP,
            PERIOD,
            1,
            meetings_held=half_months(2019, range(1, 13)),
            ratings={PETITIONER: (3, 1, 1), THIRD_PARTY: (0, 0, 5)},
        ),
    )
    return villages


async def test_the_summary_counts_units_keeping_their_cadence_and_the_satisfaction_rate(
    reporting: Reporting, records_published: list[str], keys: dict[str, str]
) -> None:
    response = await reporting.get(
        "/v1/reports/summary", keys["county_reader"], root=COUNTY, period=PERIOD
    )
    assert response.status_code == 200, response.text
    body = response.json()

    child = next(c for c in body["children"] if c["unit"]["code"] == TOWNSHIP)["levels"]
    assert (child["village"]["cadence_kept"], child["village"]["ratings"]) == (2, 10)
    assert child["village"]["satisfaction_rate"] == pytest.approx(0.4)
    assert (child["township"]["cadence_kept"], child["township"]["ratings"]) == (1, 10)
    assert child["township"]["satisfaction_rate"] == pytest.approx(0.4)
    levels = body["levels"]
    assert levels["village"]["cadence_kept"] == 2  # no other village held a meeting
    assert levels["township"]["cadence_kept"] == 1
    assert levels["county"]["cadence_kept"] == 0
    assert levels["county"]["ratings"] == 0 and levels["county"]["satisfaction_rate"] is None
    sibling = next(c for c in body["children"] if c["unit"]["code"] != TOWNSHIP)["levels"]
    assert sibling["village"]["cadence_kept"] == 0 and sibling["village"]["ratings"] == 0


async def test_the_eligible_exports_show_cadence_and_satisfaction(
    reporting: Reporting, records_published: list[str], keys: dict[str, str]
) -> None:
    params = {"root": TOWNSHIP, "period": PERIOD, "level": "village"}
    response = await reporting.get(
        "/v1/reports/eligible", keys["township_reader"], **params, format="csv"
    )
    assert response.status_code == 200, response.text
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    heading = next(i for i, row in enumerate(rows) if row and row[0] == "单位代码")
    assert rows[heading][-4:] == ["例会应开", "例会已开", "例会缺开", "满意率"]
    by_code = {row[0]: row for row in rows[heading + 1 :]}
    kept, _, one_missed, rated_only = records_published
    assert by_code[kept][-4:] == ["52", "52", "0", "80.0%"]
    assert by_code[one_missed][-4:] == ["52", "51", "1", ""]
    assert by_code[rated_only][-4:] == ["52", "0", "52", "0.0%"]

    response = await reporting.get(
        "/v1/reports/eligible", keys["township_reader"], **params, format="xlsx"
    )
    assert response.status_code == 200, response.text
    sheet = openpyxl.load_workbook(io.BytesIO(response.content))["可申报单位"]
    values = [[cell for cell in row] for row in sheet.iter_rows(values_only=True)]
    header = next(row for row in values if row and row[0] == "单位代码")
    assert list(header[-4:]) == ["例会应开", "例会已开", "例会缺开", "满意率"]
    row = next(row for row in values if row and row[0] == kept)
    assert list(row[-4:]) == ["52", "52", "0", "80.0%"]


async def test_a_cached_summary_counts_cadence_again_on_a_new_day(
    reporting_settings: ReportingSettings,
    records_published: list[str],
    keys: dict[str, str],
) -> None:
    clock = {"now": datetime(2019, 1, 13, 23, 0, tzinfo=SHANGHAI)}  # the first week still runs
    settings = reporting_settings.model_copy(update={"reporting_run_consumer": False})
    params = {"root": TOWNSHIP, "period": PERIOD}

    async with serve(
        create_app(settings, clock=lambda: clock["now"]), "http://reporting"
    ) as client:

        async def kept() -> int:
            response = await client.get(
                "/v1/reports/summary", params=params, headers=bearer(keys["township_reader"])
            )
            assert response.status_code == 200, response.text
            figures: int = response.json()["levels"]["village"]["cadence_kept"]
            return figures

        assert await kept() == 15  # no slot has ended: nobody missed one
        assert await kept() == 15
        clock["now"] = datetime(2019, 1, 14, 0, 1, tzinfo=SHANGHAI)
        assert await kept() == 2  # the week of 2019-01-07 ended; two villages met in it
