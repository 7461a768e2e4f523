"""The eligible list after events posted through intake (visits, an incident, voids and
re-attributions, some corrections arriving before their targets) is exactly the set of units
reporting calls three-no; the csv and xlsx files hold exactly that list."""

import csv
import io
from typing import Any

from openpyxl import load_workbook

from tests.conftest import COUNTY
from tests.e2e.conftest import at
from tests.support import events
from tests.support.pipeline import Pipeline
from tests.support.reporting import demo_townships, demo_villages

PERIOD = "t-e2e-eligible"
WHEN = at(PERIOD)


def to_county(unit: str, headcount: int = 5) -> dict[str, Any]:
    """A collective visit to the county: marks the village only."""
    return events.visit(unit, destination="county", headcount=headcount, occurred_at=WHEN)


async def eligible_pages(pipeline: Pipeline, level: str, *, limit: int) -> list[str]:
    codes: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"root": COUNTY, "period": PERIOD, "level": level, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await pipeline.reporting.get(
            "/v1/reports/eligible", pipeline.keys["county_reader"], **params
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        codes += [item["code"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return codes


async def three_no_by_status(pipeline: Pipeline, codes: list[str]) -> set[str]:
    clean = set()
    for code in codes:
        response = await pipeline.reporting.get(
            f"/v1/units/{code}/status", pipeline.keys["county_reader"], period=PERIOD
        )
        assert response.status_code == 200, response.text
        if response.json()["three_no"]:
            clean.add(code)
    return clean


def codes_under_headings(rows: list[list[str]]) -> list[str]:
    start = next(i for i, row in enumerate(rows) if row and row[0] == "单位代码")
    return [row[0] for row in rows[start + 1 :]]


def sheet_rows(sheet: Any) -> list[list[str]]:
    return [
        [str(v) if v is not None else "" for v in row] for row in sheet.iter_rows(values_only=True)
    ]


async def export(pipeline: Pipeline, file_format: str) -> bytes:
    response = await pipeline.reporting.get(
        "/v1/reports/eligible",
        pipeline.keys["county_reader"],
        root=COUNTY,
        period=PERIOD,
        level="village",
        format=file_format,
    )
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    return response.content


async def test_the_eligible_list_and_its_files_are_exactly_the_clean_units(
    pipeline: Pipeline,
) -> None:
    villages, townships = demo_villages(), demo_townships()
    desk = pipeline.keys["county_desk"]
    # Every 9th village marked; every third of those voided again.
    marked = {v: to_county(v) for v in villages[::9]}
    voided = list(marked)[::3]
    # A visit moved to another village, and one whose move arrives before it.
    moved, moved_first = to_county(villages[2]), to_county(villages[5])
    move_first = events.reattributed(moved_first, villages[6])
    # A void that arrives before its target: the village stays clean.
    void_first_target = to_county(villages[10])
    void_first = events.voided(void_first_target)
    # A 4-person visit marks nothing; an incident marks its village, township and county; a
    # visit attributed to a township marks that township only.
    four = to_county(villages[11], headcount=4)
    incident = events.incident(villages[7], occurred_at=WHEN)
    township_visit = events.visit(townships[3], destination="city", headcount=5, occurred_at=WHEN)

    await pipeline.post(desk, move_first, void_first)
    await pipeline.evaluated()
    await pipeline.post(
        desk,
        *marked.values(),
        moved,
        moved_first,
        void_first_target,
        four,
        incident,
        township_visit,
    )
    await pipeline.post(
        desk,
        *(events.voided(marked[v]) for v in voided),
        events.reattributed(moved, villages[4]),
    )
    await pipeline.drained()

    not_clean = (set(marked) - set(voided)) | {villages[4], villages[6], villages[7]}
    expected = [v for v in villages if v not in not_clean]
    assert len(not_clean) == 34 - 12 + 3
    assert await three_no_by_status(pipeline, villages) == set(expected)

    assert await eligible_pages(pipeline, "village", limit=41) == expected
    assert await eligible_pages(pipeline, "township", limit=1000) == [
        t for t in townships if t not in (townships[0], townships[3])
    ]
    assert await eligible_pages(pipeline, "county", limit=10) == []

    content = (await export(pipeline, "csv")).decode("utf-8-sig")
    assert codes_under_headings(list(csv.reader(io.StringIO(content)))) == expected

    workbook = load_workbook(io.BytesIO(await export(pipeline, "xlsx")), read_only=True)
    eligible_sheet, not_eligible_sheet = workbook.worksheets
    assert codes_under_headings(sheet_rows(eligible_sheet)) == expected
    assert set(codes_under_headings(sheet_rows(not_eligible_sheet))) == not_clean
