"""Every SQL statement of the webhooks service, one module per store: `subscriptions` (row by
row, on the session) and `deliveries` (in sets and on the dispatcher's hot path, SQL text on
the asyncpg connection)."""

from services.webhooks.repository.deliveries import (
    Attempt,
    Claimed,
    DeadDelivery,
    DeliveryRepository,
)
from services.webhooks.repository.subscriptions import (
    Keys,
    SubscriptionRepository,
    SubscriptionRow,
)

__all__ = [
    "Attempt",
    "Claimed",
    "DeadDelivery",
    "DeliveryRepository",
    "Keys",
    "SubscriptionRepository",
    "SubscriptionRow",
]
