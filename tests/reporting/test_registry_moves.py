"""Totals come from the registry as it is now: units loaded or moved while reporting runs are
counted where they are, and a moved unit takes its status along."""

import io
from pathlib import Path
from typing import Any

from shared.db import Database
from shared.registry.generator import ProvinceShape, generate, write_csv
from shared.registry.loader import load_file
from tests.support.reporting import Reporting, StatusPublisher, status, wait_committed
from tests.support.waiting import wait_until

PERIOD = "t-moves"
# A province of this test's own (62), whose units no other test loads, moves or counts: one
# county of three townships with three villages each.
SHAPE = ProvinceShape(
    province="62", cities=1, counties=1, townships_per_county=3, villages_per_township=3
)
COUNTY = "620101000000"
FROM_TOWNSHIP, TO_TOWNSHIP = "620101100000", "620101101000"
NEW_VILLAGE = "620101100299"


def province_rows() -> str:
    out = io.StringIO()
    write_csv(generate(SHAPE), out)
    return out.getvalue()


def registry_file(path: Path, parent: str, *, with_province: bool = False) -> Path:
    units = province_rows() if with_province else "code,name,level,parent_code\n"
    path.write_text(units + f"{NEW_VILLAGE},新建村,village,{parent}\n", encoding="utf-8")
    return path


async def load(db: Database, path: Path) -> None:
    async with db.engine.begin() as connection:
        await load_file(connection, path)


async def villages(reporting: Reporting, key: str, root: str) -> dict[str, Any]:
    summary = await reporting.get("/v1/reports/summary", key, root=root, period=PERIOD)
    figures: dict[str, Any] = summary.json()["levels"]["village"]
    return {"total": figures["total"], "three_no": figures["three_no"]}


async def test_a_unit_loaded_and_then_moved_is_counted_where_it_is(
    reporting: Reporting,
    publisher: StatusPublisher,
    keys: dict[str, str],
    db: Database,
    tmp_path: Path,
) -> None:
    admin = keys["admin"]
    await load(db, registry_file(tmp_path / "new.csv", FROM_TOWNSHIP, with_province=True))
    sent = await publisher.publish(status(NEW_VILLAGE, PERIOD, 1))
    await wait_committed(reporting.settings, sent)

    assert await villages(reporting, admin, FROM_TOWNSHIP) == {"total": 4, "three_no": 3}
    assert await villages(reporting, admin, TO_TOWNSHIP) == {"total": 3, "three_no": 3}

    await load(db, registry_file(tmp_path / "moved.csv", TO_TOWNSHIP))

    async def moved() -> bool:
        return await villages(reporting, admin, FROM_TOWNSHIP) == {"total": 3, "three_no": 3}

    await wait_until(moved, timeout=10, message="the summary to follow the registry")
    assert await villages(reporting, admin, TO_TOWNSHIP) == {"total": 4, "three_no": 3}
    assert await villages(reporting, admin, COUNTY) == {"total": 10, "three_no": 9}
    eligible = await reporting.get(
        "/v1/reports/eligible", admin, root=TO_TOWNSHIP, period=PERIOD, level="village"
    )
    assert NEW_VILLAGE not in {i["code"] for i in eligible.json()["items"]}
    assert len(eligible.json()["items"]) == 3
