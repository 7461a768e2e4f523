"""Helpers of the work-record tests (test_work_records.py): their province's units, and
reading the stored and the published indicators."""

from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa

from services.evaluation.live.service import Applied
from shared.config import Settings
from shared.db import Database
from shared.events import Rating
from shared.indicators import RatingCounts, UnitIndicators
from tests.evaluation.conftest import Evaluation
from tests.support.stack import read_topic
from tests.support.waiting import poll

PERIOD = "2018"


def township(county: str, number: int) -> str:
    return f"{county[:6]}{99 + number:03d}000"


def village(township_code: str, number: int) -> str:
    return f"{township_code[:9]}{200 + number:03d}"


def at(day: date, time: str = "19:00:00+08:00") -> str:
    return f"{day.isoformat()}T{time}"


async def indicators(db: Database, unit_code: str, period: str = PERIOD) -> dict[str, Any] | None:
    async with db.engine.connect() as connection:
        row = await connection.execute(
            sa.text(
                "SELECT * FROM evaluation.indicators WHERE unit_code = :unit AND period = :period"
            ),
            {"unit": unit_code, "period": period},
        )
        found = row.mappings().first()
    return dict(found) if found is not None else None


async def all_indicators(db: Database) -> dict[tuple[str, str], dict[str, Any]]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(sa.text("SELECT * FROM evaluation.indicators"))
        return {(r["unit_code"], r["period"]): dict(r) for r in rows.mappings()}


def held(row: dict[str, Any] | None) -> list[date]:
    return list(row["meetings_held"]) if row is not None else []


def counts(row: dict[str, Any] | None, source: str | None = None) -> RatingCounts:
    """The rating counts of the stored indicators, of one source or of all."""
    sources = [source] if source else ["petitioner", "third_party", "representative"]
    return RatingCounts(
        **{r.value: sum(row[f"{s}_{r}"] for s in sources) if row is not None else 0 for r in Rating}
    )


async def published(settings: Settings, unit_code: str, period: str = PERIOD) -> list[Any]:
    wanted = f"{unit_code}:{period}".encode()
    found = []
    for _, key, value, _ in await read_topic(settings, settings.indicator_topic):
        if key == wanted:
            found.append(UnitIndicators.model_validate_json(value))
    return found


async def wait_published(
    settings: Settings, unit_code: str, version: int, period: str = PERIOD
) -> list[UnitIndicators]:
    async def arrived() -> list[UnitIndicators] | None:
        messages = await published(settings, unit_code, period)
        return messages if messages and messages[-1].version >= version else None

    return await poll(arrived, timeout=20, message=f"indicators v{version} of {unit_code}")


async def apply_directly(evaluation: Evaluation, db: Database, items: Sequence[Any]) -> Applied:
    async with db.session() as session:
        return await evaluation.worker.service.apply(
            session, list(items), now=evaluation.clock.now()
        )
