"""The warning relay: the changes in `warning_outbox` published on `settings.warning_topic`,
keyed by the warning's id."""

from services.evaluation.models import warning_outbox
from shared.config import Settings
from shared.db import Database
from shared.outbox import OutboxRelay


def warning_relay(db: Database, settings: Settings, *, idle_poll_seconds: float) -> OutboxRelay:
    return OutboxRelay(
        db=db,
        settings=settings,
        table=warning_outbox,
        topic=settings.warning_topic,
        idle_poll_seconds=idle_poll_seconds,
        notified=False,
    )
