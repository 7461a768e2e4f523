"""Totals come from the registry as it is now: units loaded or moved while reporting runs are
counted where they are, and a moved unit takes its status along."""

from pathlib import Path
from typing import Any

from shared.db import Database
from shared.registry.loader import load_file
from tests.support.reporting import Reporting, StatusPublisher, status, wait_committed
from tests.support.waiting import wait_until

PERIOD = "t-moves"
# The synthetic province's second city: no other reporting test counts its units.
COUNTY = "350201000000"
FROM_TOWNSHIP, TO_TOWNSHIP = "350201100000", "350201101000"
NEW_VILLAGE = "350201100299"


def registry_file(path: Path, parent: str) -> Path:
    path.write_text(
        f"code,name,level,parent_code\n{NEW_VILLAGE},新建村,village,{parent}\n", encoding="utf-8"
    )
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
    await load(db, registry_file(tmp_path / "new.csv", FROM_TOWNSHIP))
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
