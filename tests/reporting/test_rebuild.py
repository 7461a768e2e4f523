"""`sanwu reporting rebuild` rebuilds the read model from the compacted status topic while the
service runs: what the old read model lost comes back, feed cursors stay valid, and what was
missing reaches the feed once."""

import asyncio
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from shared.db import Database
from tests.conftest import COUNTY
from tests.support.reporting import (
    Reporting,
    StatusPublisher,
    demo_villages,
    status,
    wait_committed,
)
from tests.support.waiting import wait_until

SANWU = str(Path(sys.executable).parent / "sanwu")
PERIOD = "t-rebuild"


async def sanwu(*args: str) -> tuple[int, str]:
    """Runs the command while the in-process service keeps running; (exit code, stderr)."""
    process = await asyncio.create_subprocess_exec(
        SANWU, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def feed_after(reporting: Reporting, key: str, since: str | None) -> tuple[list[Any], str]:
    params: dict[str, Any] = {"root": COUNTY, "limit": 1000} | ({"since": since} if since else {})
    items: list[Any] = []
    while True:
        body = (await reporting.get("/v1/feed/status-changes", key, **params)).json()
        items += [(i["unit_code"], i["period"], i["version"]) for i in body["items"]]
        params["since"] = body["next_cursor"]
        if not body["items"]:
            return items, body["next_cursor"]


async def village_three_no(reporting: Reporting, key: str) -> int:
    summary = await reporting.get("/v1/reports/summary", key, root=COUNTY, period=PERIOD)
    three_no: int = summary.json()["levels"]["village"]["three_no"]
    return three_no


async def shows(reporting: Reporting, key: str, three_no: int) -> None:
    """The summary reaches the figure (a change made by another process arrives by NOTIFY)."""

    async def reached() -> bool:
        return await village_three_no(reporting, key) == three_no

    await wait_until(reached, timeout=5, message=f"{three_no} three-no villages")


async def test_rebuild_restores_a_damaged_read_model_and_keeps_the_feed_going(
    reporting: Reporting, publisher: StatusPublisher, keys: dict[str, str], db: Database
) -> None:
    key = keys["county_reader"]
    lost, kept, other = demo_villages()[200:203]
    sent = await publisher.publish(
        status(lost, PERIOD, 1),
        status(lost, PERIOD, 2, counts={"incident": 1}, people={}),
        status(kept, PERIOD, 1),
        status(other, PERIOD, 1),
    )
    await wait_committed(reporting.settings, sent)
    _, cursor = await feed_after(reporting, key, None)
    assert await village_three_no(reporting, key) == 297
    async with db.engine.begin() as connection:
        await connection.execute(
            sa.text("DELETE FROM reporting.unit_status WHERE unit_code = :u AND period = :p"),
            {"u": lost, "p": PERIOD},
        )
        await connection.execute(
            sa.text("UPDATE reporting.level_counts SET not_clean = 0 WHERE period = :p"),
            {"p": PERIOD},
        )
        # Announced like any write of the read model, so that cached summaries show it.
        await connection.execute(sa.text("SELECT pg_notify('reporting_changes', '')"))
    await shows(reporting, key, 300)

    code, stderr = await sanwu("reporting", "rebuild")

    assert code == 0, stderr
    assert "offsets (" in stderr and "rebuilt:" in stderr
    await shows(reporting, key, 297)
    restored = await reporting.get(f"/v1/units/{lost}/status", key, period=PERIOD)
    assert restored.json()["version"] == 2 and restored.json()["counts"]["incident"] == 1
    added, cursor = await feed_after(reporting, key, cursor)
    assert added == [(lost, PERIOD, 2)]

    # Again: nothing is missing now, so nothing is added; the swapped-in tables carry the
    # live names, so the staging names are free for the next rebuild.
    assert (await sanwu("reporting", "rebuild"))[0] == 0
    assert (await feed_after(reporting, key, cursor))[0] == []
    assert await village_three_no(reporting, key) == 297
    async with db.engine.connect() as connection:
        names = await connection.execute(
            sa.text(
                "SELECT conname FROM pg_constraint WHERE connamespace = 'reporting'::regnamespace"
                " AND contype = 'p' AND conname LIKE 'pk_%' ORDER BY conname"
            )
        )
        assert [n for (n,) in names] == [
            "pk_disputes",
            "pk_early_warnings",
            "pk_level_counts",
            "pk_status_changes",
            "pk_unit_indicators",
            "pk_unit_status",
            "pk_warning_changes",
        ]

    # The running consumer goes on applying into the swapped-in tables.
    sent = await publisher.publish(status(kept, PERIOD, 2, three_no=True))
    await wait_committed(reporting.settings, sent)
    assert await village_three_no(reporting, key) == 298
