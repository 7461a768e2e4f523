"""The eligible list is exactly the units of the level that are three-no now, page by page and
as csv and xlsx files."""

import csv
import io

from openpyxl import load_workbook

from tests.conftest import COUNTY
from tests.support.reporting import (
    Reporting,
    StatusPublisher,
    demo_townships,
    demo_villages,
    status,
    wait_committed,
)

PERIOD = "t-eligible"


async def script_statuses(reporting: Reporting, publisher: StatusPublisher) -> set[str]:
    """Every 7th village not three-no, and of those every other one three-no again; returns
    the villages that end up not three-no."""
    villages = demo_villages()
    dirty = villages[::7]
    cleaned = dirty[::2]
    sent = await publisher.publish(
        *[status(v, PERIOD, 1) for v in dirty],
        *[status(v, PERIOD, 2, three_no=True) for v in cleaned],
        status(demo_townships()[3], PERIOD, 1),
    )
    await wait_committed(reporting.settings, sent)
    return set(dirty) - set(cleaned)


def table_after_headings(rows: list[list[str]]) -> tuple[list[list[str]], list[list[str]]]:
    """(the header block, the rows under the column headings)."""
    start = next(i for i, row in enumerate(rows) if row and row[0] == "单位代码")
    return rows[:start], rows[start + 1 :]


async def test_pages_csv_and_xlsx_hold_exactly_the_three_no_units(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    not_clean = await script_statuses(reporting, publisher)
    expected = [v for v in demo_villages() if v not in not_clean]
    assert 0 < len(not_clean) < 300

    pages, cursor = [], None
    while True:
        params = {"root": COUNTY, "period": PERIOD, "level": "village", "limit": 37}
        response = await reporting.get(
            "/v1/reports/eligible",
            keys["county_reader"],
            **params,
            **({"cursor": cursor} if cursor else {}),
        )
        assert response.status_code == 200
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    listed = [item["code"] for page in pages for item in page]
    assert listed == expected
    assert all(len(page) == 37 for page in pages[:-1]) and 0 < len(pages[-1]) <= 37
    assert pages[0][0]["level"] == "village" and pages[0][0]["parent_code"] == COUNTY[:6] + "100000"

    response = await reporting.get(
        "/v1/reports/eligible",
        keys["county_reader"],
        root=COUNTY,
        period=PERIOD,
        level="village",
        format="csv",
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    block, table = table_after_headings(rows)
    assert [row[0] for row in table] == expected
    assert rows[len(block)] == [
        "单位代码",
        "单位名称",
        "层级",
        "上级单位代码",
        "上级单位名称",
        "例会应开",
        "例会已开",
        "例会缺开",
        "满意率",
    ]
    header = {row[0]: row[1] for row in block if len(row) == 2}
    assert header["统计范围"] == f"枞阳县（{COUNTY}）"
    assert header["考核期"].startswith(PERIOD)
    assert header["单位层级"] == "村（居）"
    assert header["可申报单位数"] == str(len(expected))
    assert "数据截至" in header

    response = await reporting.get(
        "/v1/reports/eligible",
        keys["county_reader"],
        root=COUNTY,
        period=PERIOD,
        level="village",
        format="xlsx",
    )
    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.content), read_only=True)
    eligible_sheet, not_eligible_sheet = workbook.worksheets
    rows = [
        [str(v) if v is not None else "" for v in r]
        for r in eligible_sheet.iter_rows(values_only=True)
    ]
    block, table = table_after_headings(rows)
    assert [row[0] for row in table] == expected
    header = {row[0]: row[1] for row in block if len(row) > 1 and row[0]}
    assert header["统计范围"] == f"枞阳县（{COUNTY}）" and header["考核期"].startswith(PERIOD)
    assert "数据截至" in header
    rows = [
        [str(v) if v is not None else "" for v in r]
        for r in not_eligible_sheet.iter_rows(values_only=True)
    ]
    block, table = table_after_headings(rows)
    assert {row[0] for row in table} == not_clean
    reason = rows[len(block)].index("不符合原因")
    assert all(row[reason] == "集体上访1批6人次" for row in table)


async def test_townships_and_a_township_root_list_their_own_level(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    not_clean = await script_statuses(reporting, publisher)
    townships = demo_townships()

    response = await reporting.get(
        "/v1/reports/eligible",
        keys["county_reader"],
        root=COUNTY,
        period=PERIOD,
        level="township",
        limit=1000,
    )
    assert [i["code"] for i in response.json()["items"]] == townships[:3] + townships[4:]
    assert response.json()["next_cursor"] is None

    township = townships[0]
    response = await reporting.get(
        "/v1/reports/eligible", keys["admin"], root=township, period=PERIOD, level="village"
    )
    expected = [v for v in demo_villages(township) if v not in not_clean]
    assert [i["code"] for i in response.json()["items"]] == expected
