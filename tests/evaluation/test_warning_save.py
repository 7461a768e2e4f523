"""Saving warnings: a batch that changes more warnings than one statement takes (a whole county's
at national size) saves them a part at a time, each stored and published once."""

import uuid
from datetime import UTC, datetime

import pytest

from services.evaluation.warnings import repository as warning_repository
from services.evaluation.warnings.records import StoredWarning
from services.evaluation.warnings.repository import WarningRepository
from shared.db import Database
from shared.early_warning import WarningKind

RAISED_AT = datetime(2018, 6, 3, 1, 30, tzinfo=UTC)


def warning(version: int = 1) -> StoredWarning:
    return StoredWarning(
        warning_id=uuid.uuid4(),
        kind=WarningKind.repeat_petitioner,
        unit_code="340722100201",
        scope="hmac-sha256:ab",
        cause_at=RAISED_AT,
        raised_at=RAISED_AT,
        cleared_at=None,
        event_ids=(uuid.uuid4(), uuid.uuid4()),
        detail={"visits": 3, "days": 90},
        version=version,
    )


async def test_more_warnings_than_one_statement_saves_are_each_stored_and_published_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warning_repository, "SAVED_AT_ONCE", 3)
    warnings = [warning() for _ in range(7)]
    ids = [w.warning_id for w in warnings]
    async with db.connection() as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await WarningRepository(connection).save(warnings)
            stored = await connection.fetch(
                "SELECT warning_id, event_ids FROM evaluation.warning WHERE warning_id = ANY($1)",
                ids,
            )
            published = await connection.fetch(
                "SELECT key FROM evaluation.warning_outbox WHERE key = ANY($1) ORDER BY id",
                [w.message().key for w in warnings],
            )
        finally:
            await transaction.rollback()
    assert {r["warning_id"]: tuple(r["event_ids"]) for r in stored} == {
        w.warning_id: w.event_ids for w in warnings
    }
    assert [r["key"] for r in published] == [w.message().key for w in warnings]
