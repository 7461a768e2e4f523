"""Losing the database before a commit means nothing was stored (503); losing it during the
commit leaves the outcome unknown (504), and the service says so rather than guess."""

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import Database
from shared.errors import CommitOutcomeUnknown, DependencyUnavailable


async def cut_connection(db: Database, session: AsyncSession) -> None:
    pid = (await session.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
    async with db.engine.connect() as other:
        await other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


async def test_connection_lost_before_the_commit_is_unavailable(db: Database) -> None:
    with pytest.raises(DependencyUnavailable) as raised:
        async with db.session() as session:
            await cut_connection(db, session)
            await session.execute(sa.text("SELECT 1"))
    assert type(raised.value) is DependencyUnavailable
    assert raised.value.status == 503


async def test_connection_lost_at_the_commit_is_outcome_unknown(db: Database) -> None:
    with pytest.raises(CommitOutcomeUnknown) as raised:
        async with db.session() as session:
            await cut_connection(db, session)
    assert raised.value.status == 504
    async with db.session() as session:  # the pool recovers for the next unit of work
        assert (await session.execute(sa.text("SELECT 1"))).scalar_one() == 1
