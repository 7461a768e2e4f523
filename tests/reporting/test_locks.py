"""Reporting's writes and an evaluation rebuild take locks of their own: a rebuild running (or
swapping its tables in) never holds up the read model."""

import sqlalchemy as sa

from services.evaluation.live.repository.events import REBUILD_LOCK
from services.evaluation.rebuild.repository import RUNNING_LOCK
from shared.db import Database
from tests.conftest import VILLAGE
from tests.support.reporting import Reporting, StatusPublisher, status, wait_committed

PERIOD = "t-locks"


async def stored_version(db: Database) -> int | None:
    async with db.engine.connect() as connection:
        found = await connection.execute(
            sa.text(
                "SELECT version FROM reporting.unit_status WHERE unit_code = :unit "
                "AND period = :period"
            ),
            {"unit": VILLAGE, "period": PERIOD},
        )
        return found.scalar()


async def test_reporting_applies_changes_while_an_evaluation_rebuild_holds_its_locks(
    reporting: Reporting, publisher: StatusPublisher, db: Database
) -> None:
    async with db.engine.connect() as rebuilding:
        # What `sanwu evaluation rebuild` holds: its running lock for the whole run, and the
        # batches' lock exclusively while it swaps its tables in.
        await rebuilding.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": RUNNING_LOCK})
        try:
            await rebuilding.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": REBUILD_LOCK}
            )
            sent = await publisher.publish(status(VILLAGE, PERIOD, 1))
            await wait_committed(reporting.settings, sent, timeout=10)
            assert await stored_version(db) == 1
        finally:
            await rebuilding.rollback()
            await rebuilding.execute(
                sa.text("SELECT pg_advisory_unlock(:key)"), {"key": RUNNING_LOCK}
            )
