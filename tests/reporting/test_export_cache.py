"""Eligible-list files: every cell neutralised against spreadsheet formulas, the header block's
too; a file is built once per read-model version and kept, and a status change makes the next
call build it again."""

import asyncio
import csv
import io
from collections.abc import AsyncIterator

import pytest
from openpyxl import load_workbook
from prometheus_client import REGISTRY

from services.reporting.cache import ExportCache
from services.reporting.exports import FORMULA_START
from shared.db import Database
from shared.registry.loader import load_file
from tests.support.reporting import Reporting, StatusPublisher, status, wait_committed
from tests.support.waiting import wait_until

PERIOD = "2018"
# A province of its own (61, no other test's), so that no other test's figures move; its
# names start like formulas.
PROVINCE, CITY, COUNTY = "610000000000", "610100000000", "610101000000"
TOWNSHIP = "610101100000"
COUNTY_NAME = '=HYPERLINK("http://example.invalid","x")县'
TOWNSHIP_NAME = "@SUM(1)镇"
UNITS = [
    (PROVINCE, "测试省", "province", ""),
    (CITY, "测试市", "city", PROVINCE),
    (COUNTY, COUNTY_NAME, "county", CITY),
    (TOWNSHIP, TOWNSHIP_NAME, "township", COUNTY),
    ("610101100201", "-3+村", "village", TOWNSHIP),
    ("610101100202", "+4村", "village", TOWNSHIP),
    ("610101100203", "=5村", "village", TOWNSHIP),
]
VILLAGES = [code for code, _, level, _ in UNITS if level == "village"]


@pytest.fixture(scope="module")
async def hostile_county(
    reporting: Reporting,
    keys: dict[str, str],
    db: Database,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[None]:
    path = tmp_path_factory.mktemp("units") / "units.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["code", "name", "level", "parent_code"])
        writer.writerows(UNITS)
    async with db.engine.begin() as connection:
        await load_file(connection, path)

    async def seen() -> bool:
        page = await reporting.get(
            "/v1/reports/eligible", keys["admin"], root=COUNTY, period=PERIOD, level="village"
        )
        listening = reporting.service.cache.listening
        return listening and page.status_code == 200 and len(page.json()["items"]) == 3

    await wait_until(seen, timeout=10, message="reporting to see the new county")
    yield


def builds(file_format: str) -> float:
    value = REGISTRY.get_sample_value(
        "sanwu_reporting_export_builds_total", {"format": file_format}
    )
    return value or 0.0


async def export(reporting: Reporting, key: str, file_format: str, *, root: str) -> bytes:
    response = await reporting.get(
        "/v1/reports/eligible", key, root=root, period=PERIOD, level="village", format=file_format
    )
    assert response.status_code == 200, response.text
    # A list of units and their records: kept by no cache on the way or in the browser.
    assert response.headers["cache-control"] == "no-store"
    return response.content


def csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


@pytest.mark.usefixtures("hostile_county")
async def test_no_cell_of_a_csv_starts_like_a_formula_the_header_block_neither(
    reporting: Reporting, keys: dict[str, str]
) -> None:
    rows = csv_rows(await export(reporting, keys["admin"], "csv", root=COUNTY))

    cells = [cell for row in rows for cell in row]
    assert not [c for c in cells if c.startswith(FORMULA_START)], rows
    assert rows[0][0] == "'" + COUNTY_NAME + "三无创建可申报单位名单"
    header = {row[0]: row[1] for row in rows if len(row) == 2}
    assert header["统计范围"] == f"'{COUNTY_NAME}（{COUNTY}）"
    headings = ["单位代码", "单位名称", "层级", "上级单位代码", "上级单位名称"]
    table = rows[[row[:5] for row in rows].index(headings) + 1 :]
    assert [row[1] for row in table] == ["'-3+村", "'+4村", "'=5村"]
    assert {row[4] for row in table} == {"'" + TOWNSHIP_NAME}

    workbook = load_workbook(
        io.BytesIO(await export(reporting, keys["admin"], "xlsx", root=COUNTY))
    )
    for sheet in workbook.worksheets:
        texts = [c for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
        # Written as text, which no spreadsheet program runs, and shown as the name is.
        assert texts and all(c.data_type == "s" for c in texts)
    title = workbook.worksheets[0]["A1"]
    assert title.value == COUNTY_NAME + "三无创建可申报单位名单" and title.data_type == "s"


@pytest.mark.usefixtures("hostile_county")
async def test_an_export_is_built_once_per_read_model_version(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str]
) -> None:
    admin = keys["admin"]
    before = builds("csv"), builds("xlsx")

    first = await export(reporting, admin, "csv", root=TOWNSHIP)
    second = await export(reporting, admin, "csv", root=TOWNSHIP)
    workbook = await export(reporting, admin, "xlsx", root=TOWNSHIP)
    assert await export(reporting, admin, "xlsx", root=TOWNSHIP) == workbook

    assert second == first  # the same file, "as of" included
    assert (builds("csv"), builds("xlsx")) == (before[0] + 1, before[1] + 1)
    # A cached file still goes only to keys whose scope covers the root.
    outside = await reporting.get(
        "/v1/reports/eligible",
        keys["county_reader"],
        root=TOWNSHIP,
        period=PERIOD,
        level="village",
        format="csv",
    )
    assert outside.status_code == 403

    sent = await publisher.publish(status(VILLAGES[0], PERIOD, 1))
    await wait_committed(reporting.settings, sent)
    third = await export(reporting, admin, "csv", root=TOWNSHIP)
    fourth = await export(reporting, admin, "csv", root=TOWNSHIP)

    assert builds("csv") == before[0] + 2
    assert fourth == third != first
    assert VILLAGES[0] in first.decode("utf-8-sig") and VILLAGES[0] not in third.decode("utf-8-sig")


async def test_the_cache_keeps_within_its_bounds_and_callers_share_one_build() -> None:
    cache = ExportCache(bytes_kept=10, files_kept=2)
    built: list[str] = []
    gate = asyncio.Event()

    def builder(name: str, size: int):  # type: ignore[no-untyped-def]
        async def build() -> bytes:
            built.append(name)
            await gate.wait()
            return name.encode().ljust(size, b".")

        return build

    stamp = (1, 1)
    together = [
        asyncio.create_task(
            cache.get_or_build(("a", "p", "village", "csv"), stamp, builder("a", 4))
        )
        for _ in range(5)
    ]
    await asyncio.sleep(0)
    gate.set()
    assert {await t for t in together} == {b"a..."} and built == ["a"]

    await cache.get_or_build(("b", "p", "village", "csv"), stamp, builder("b", 4))
    await cache.get_or_build(("c", "p", "village", "csv"), stamp, builder("c", 4))  # 2 files max
    await cache.get_or_build(("d", "p", "village", "csv"), stamp, builder("d", 11))  # too big
    await cache.get_or_build(("c", "p", "village", "csv"), stamp, builder("c2", 4))
    await cache.get_or_build(("b", "p", "village", "csv"), stamp, builder("b2", 4))
    assert built == ["a", "b", "c", "d"]
    await cache.get_or_build(("a", "p", "village", "csv"), stamp, builder("a2", 4))
    await cache.get_or_build(("c", "p", "village", "csv"), (2, 1), builder("c3", 4))
    await cache.get_or_build(("b", "p", "village", "csv"), (1, 1), builder("b3", 4))  # stale
    await cache.get_or_build(("c", "p", "village", "csv"), (2, 1), builder("c4", 4))
    await cache.get_or_build(("b", "p", "village", "csv"), None, builder("b4", 4))
    await cache.get_or_build(("b", "p", "village", "csv"), None, builder("b5", 4))
    assert built == ["a", "b", "c", "d", "a2", "c3", "b3", "b4", "b5"]
