"""What the stores share: reading rows as model objects through the session, and the statement
that keeps the newest version of a row per unit and period."""

from collections.abc import Sequence
from typing import TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

T = TypeVar("T")

# Statements that change rows go around the objects a session holds (UNSYNCED): a row read
# again is read anew (FRESH), never answered from the session's identity map.
FRESH = {"populate_existing": True}
UNSYNCED = {"synchronize_session": False}


async def objects(session: AsyncSession, statement: SelectOfScalar[T]) -> Sequence[T]:
    """The model objects the statement selects."""
    return (await session.scalars(statement.execution_options(**FRESH))).all()


def newer_version_wins(table: sa.Table, *, rows: str) -> str:
    """`INSERT … SELECT` of `rows` (the table's columns, in their order), keyed by unit and
    period: a row is written unless one of the same or a newer version is there."""
    columns = [c.name for c in table.columns]
    updates = [f"{c} = EXCLUDED.{c}" for c in columns if c not in ("unit_code", "period")]
    return (
        f"INSERT INTO {table.fullname} AS s ({', '.join(columns)}) {rows} "
        f"ON CONFLICT (unit_code, period) DO UPDATE SET {', '.join(updates)} "
        "WHERE s.version < EXCLUDED.version"
    )


def as_json(value: object) -> str:
    """A JSON parameter of a SQL text statement."""
    return orjson.dumps(value).decode()
