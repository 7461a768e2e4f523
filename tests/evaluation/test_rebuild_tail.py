"""A rebuild finds the warnings before its swap, then reads under the swap's lock what reached
the topic meanwhile: a visit read then is not left out of the warnings. Units of a province of
this module's own (48)."""

from datetime import datetime
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from services.evaluation.rebuild.run import rebuild
from services.evaluation.rebuild.warnings import WarningRebuild
from shared.db import Database
from shared.registry.generator import ProvinceShape, generate, write_csv
from shared.registry.loader import load_file
from tests.evaluation.conftest import Evaluation
from tests.evaluation.helpers import Desk, wait_applied
from tests.support import events

PROVINCE = ProvinceShape(
    province="48", cities=1, counties=1, townships_per_county=1, villages_per_township=1
)
VILLAGE = "480101100201"
T = datetime.fromisoformat("2019-08-01T10:00:00+08:00")


@pytest.fixture(scope="module")
async def village(evaluation: Evaluation, db: Database, tmp_path_factory: Any) -> str:
    path = tmp_path_factory.mktemp("rebuild-tail") / "province.csv"
    with path.open("w", encoding="utf-8") as handle:
        write_csv(generate(PROVINCE), handle)
    async with db.engine.begin() as connection:
        await load_file(connection, path)
    await evaluation.worker.registry.refresh()
    return VILLAGE


async def warnings_naming(db: Database, event_id: str) -> list[dict[str, Any]]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT * FROM evaluation.warning WHERE CAST(:id AS uuid) = ANY(event_ids)"),
            {"id": event_id},
        )
        return [dict(row) for row in rows.mappings()]


async def test_a_visit_read_under_the_swap_lock_still_warns(
    village: str,
    desk: Desk,
    db: Database,
    evaluation: Evaluation,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 4 people to the county: short of the village's collective rule by the margin.
    near = events.visit(village, occurred_at=T.isoformat(), destination="county", headcount=4)
    find_warnings = WarningRebuild.find

    async def find_then_post(self: WarningRebuild, connection: asyncpg.Connection) -> None:
        await find_warnings(self, connection)
        await wait_applied(db, await desk.post(near))  # on the topic after the rebuild's ends

    monkeypatch.setattr(WarningRebuild, "find", find_then_post)
    await rebuild(evaluation.settings, clock=evaluation.clock)

    warnings = await warnings_naming(db, near["event_id"])
    assert [(w["kind"], w["unit_code"], w["cleared_at"]) for w in warnings] == [
        ("near_threshold", village, None)
    ]
