"""The transactional outbox, shared by every service that publishes to Kafka.

A service writes its messages into `<schema>.outbox` in the same transaction as the state they
describe. `OutboxRelay` publishes them oldest first with an idempotent producer and deletes what
Kafka acknowledged, one database transaction per round. A relay that dies after the ack but
before the delete publishes those rows again on restart: messages carry ids that consumers
de-duplicate on. Kafka being down only delays delivery.
"""

from shared.outbox.relay import OutboxRelay
from shared.outbox.repository import OutboxMessage, OutboxRepository, PendingMessage
from shared.outbox.table import (
    channel_of,
    create_outbox,
    create_wake_trigger,
    drop_outbox,
    drop_wake_trigger,
    outbox_table,
)

__all__ = [
    "OutboxMessage",
    "OutboxRelay",
    "OutboxRepository",
    "PendingMessage",
    "channel_of",
    "create_outbox",
    "create_wake_trigger",
    "drop_outbox",
    "drop_wake_trigger",
    "outbox_table",
]
