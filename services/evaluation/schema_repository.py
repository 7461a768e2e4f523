"""The base of evaluation's repositories, whose statements name the schema they work in (the
live one, or a rebuild's fresh copy), and the helpers that turn rows into the arrays an
`unnest` statement takes."""

from collections.abc import Iterable, Sequence
from typing import Any, Self

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation.models import SCHEMA
from shared.repository import Repository, session_connection


class SchemaRepository(Repository):
    """A repository whose statements name the schema they work in (live or a rebuild's)."""

    def __init__(
        self,
        connection: asyncpg.Connection,
        *,
        schema: str = SCHEMA,
        session: AsyncSession | None = None,
    ) -> None:
        super().__init__(connection, session=session)
        self.schema = schema

    @classmethod
    async def from_session(cls, session: AsyncSession, *, schema: str = SCHEMA) -> Self:
        return cls(await session_connection(session), schema=schema, session=session)


def listed(columns: Iterable[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{c}" for c in columns)


def by_column(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one list per column: the arrays an `unnest` statement takes."""
    return [[row[i] for row in rows] for i in range(width)]


def by_field(records: Sequence[Any], *names: str) -> list[list[Any]]:
    """Records as one list per named field: the arrays an `unnest` statement takes."""
    return [[getattr(record, name) for record in records] for name in names]
