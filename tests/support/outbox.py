"""Outboxes in the tests' database: how much is left in one, and waiting until a relay has
emptied it."""

import sqlalchemy as sa

from shared.db import Database
from tests.support.waiting import wait_until

SCHEMAS = ("intake", "evaluation", "applications")  # the services with an outbox


async def outbox_count(db: Database, *, schema: str = "intake") -> int:
    assert schema in SCHEMAS, schema
    async with db.engine.connect() as connection:
        left = await connection.execute(sa.text(f"SELECT count(*) FROM {schema}.outbox"))
        return int(left.scalar_one())


async def wait_outbox_drained(
    db: Database, *, schema: str = "intake", timeout: float = 30.0
) -> None:
    async def empty() -> bool:
        return await outbox_count(db, schema=schema) == 0

    await wait_until(empty, timeout=timeout, message=f"the relay to empty {schema}'s outbox")
