"""Repositories built from a session run their asyncpg statements inside the session's
transaction, even when nothing went through the session before them."""

import uuid

import pytest
import sqlalchemy as sa

from services.evaluation.live.repository.events import EvaluationRepository
from services.evaluation.records import DeadLetterRecord
from shared.db import Database
from shared.repository import session_connection


class Rollback(Exception):
    pass


async def dead_letter(db: Database, event_id: uuid.UUID) -> DeadLetterRecord | None:
    async with db.session() as session:
        repository = await EvaluationRepository.from_session(session)
        return await repository.dead_letter(event_id)


async def test_a_first_statement_on_the_connection_rolls_back_with_the_session(
    db: Database,
) -> None:
    event_id = uuid.uuid4()
    with pytest.raises(Rollback):
        async with db.session() as session:
            repository = await EvaluationRepository.from_session(session)
            await repository.record_dead_letters([DeadLetterRecord(event_id, None, "probe")])
            assert await repository.dead_letter(event_id) is not None
            raise Rollback
    assert await dead_letter(db, event_id) is None


async def test_it_commits_with_the_session(db: Database) -> None:
    event_id = uuid.uuid4()
    async with db.session() as session:
        repository = await EvaluationRepository.from_session(session)
        await repository.record_dead_letters([DeadLetterRecord(event_id, None, "probe")])
    assert await dead_letter(db, event_id) == DeadLetterRecord(event_id, None, "probe")


async def test_the_batch_lock_lasts_until_the_session_ends(db: Database) -> None:
    async with db.session() as session:
        repository = await EvaluationRepository.from_session(session)
        await repository.lock_batches(exclusive=True)
        pid = await repository.connection.fetchval("SELECT pg_backend_pid()")
        assert await exclusive_advisory_locks(db, pid) == 1
    assert await exclusive_advisory_locks(db, pid) == 0


async def exclusive_advisory_locks(db: Database, pid: int) -> int:
    async with db.connection() as other:
        return int(
            await other.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND mode = 'ExclusiveLock' AND pid = $1",
                pid,
            )
        )


async def test_the_transaction_begins_without_a_statement_through_the_session(
    db: Database,
) -> None:
    sent: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.session() as session:
            connection = await session_connection(session)
            assert connection.is_in_transaction()
    finally:
        sa.event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert sent == []
