"""The status and indicator outboxes share the schema's wake-up channel; the wake-up names the
table whose rows committed, and a relay wakes for its own table only (or for a wake-up that
names none)."""

import asyncio

import asyncpg

from services.evaluation.config import EvaluationSettings
from services.evaluation.main import relays
from services.evaluation.models import indicator_outbox, outbox
from shared.config import Settings
from shared.db import Database, asyncpg_dsn
from shared.outbox.table import channel_of


async def test_a_commit_to_an_outbox_wakes_with_its_table_name(settings: Settings) -> None:
    listener = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    writer = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    heard: asyncio.Queue[str] = asyncio.Queue()
    try:
        await listener.add_listener(
            channel_of("evaluation"), lambda *args: heard.put_nowait(args[-1])
        )
        # A table of this session with the outbox trigger: no relay publishes its rows.
        await writer.execute(
            "CREATE TEMP TABLE probe_outbox (id int);"
            "CREATE TRIGGER probe_notify AFTER INSERT ON probe_outbox "
            "FOR EACH STATEMENT EXECUTE FUNCTION evaluation.notify_outbox()"
        )
        await writer.execute("INSERT INTO probe_outbox VALUES (1)")

        assert await asyncio.wait_for(heard.get(), 5) == "probe_outbox"
    finally:
        await listener.close()
        await writer.close()


def test_a_relay_wakes_for_its_own_table_or_an_unnamed_one(
    db: Database, evaluation_settings: EvaluationSettings
) -> None:
    by_name = relays(db, evaluation_settings)
    status, indicators = by_name["status-relay"], by_name["indicator-relay"]
    assert (status.table, indicators.table) == (outbox, indicator_outbox)
    channel = channel_of("evaluation")

    status._notified(None, 0, channel, "indicator_outbox")
    assert not status._wake.is_set()
    indicators._notified(None, 0, channel, "indicator_outbox")
    assert indicators._wake.is_set()
    status._notified(None, 0, channel, "")
    assert status._wake.is_set()
