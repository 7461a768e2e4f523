"""The subscriptions, row by row: SQLAlchemy statements on the session."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import sqlalchemy as sa

from services.webhooks.models import subscription
from shared.repository import Repository


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    subscription_id: UUID
    key_id: str
    scope_code: str | None
    url: str
    kinds: list[str]
    secret: bytes
    signing_seed: bytes
    previous_secret: bytes | None
    previous_signing_seed: bytes | None
    previous_until: datetime | None
    state: str
    disabled_reason: str | None
    created_at: datetime
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class Keys:
    secret: bytes
    signing_seed: bytes


class SubscriptionRepository(Repository):
    async def add(self, row: SubscriptionRow) -> None:
        await self.session.execute(sa.insert(subscription).values(**_fields(row)))

    async def get(
        self, subscription_id: UUID, *, for_update: bool = False
    ) -> SubscriptionRow | None:
        query = sa.select(subscription).where(subscription.c.subscription_id == subscription_id)
        if for_update:
            query = query.with_for_update()
        found = (await self.session.execute(query)).mappings().first()
        return SubscriptionRow(**found) if found else None

    async def of_scope(self, scope_code: str | None) -> list[SubscriptionRow]:
        """A scope's subscriptions (None: every one), oldest first."""
        query = sa.select(subscription).order_by(
            subscription.c.created_at, subscription.c.subscription_id
        )
        if scope_code is not None:
            query = query.where(subscription.c.scope_code == scope_code)
        rows = (await self.session.execute(query)).mappings().all()
        return [SubscriptionRow(**row) for row in rows]

    async def remove(self, subscription_id: UUID) -> None:
        await self.session.execute(
            sa.delete(subscription).where(subscription.c.subscription_id == subscription_id)
        )

    async def rotate(
        self, subscription_id: UUID, keys: Keys, *, overlap_until: datetime, at: datetime
    ) -> None:
        """New keys; the ones they replace stay in force beside them until `overlap_until`."""
        c = subscription.c
        await self.session.execute(
            sa.update(subscription)
            .where(c.subscription_id == subscription_id)
            .values(
                previous_secret=c.secret,
                previous_signing_seed=c.signing_seed,
                previous_until=overlap_until,
                secret=keys.secret,
                signing_seed=keys.signing_seed,
                changed_at=at,
            )
        )

    async def disable(self, subscription_id: UUID, *, reason: str, at: datetime) -> None:
        await self.session.execute(
            sa.update(subscription)
            .where(subscription.c.subscription_id == subscription_id)
            .values(state="disabled", disabled_reason=reason, changed_at=at)
        )


def _fields(row: SubscriptionRow) -> dict[str, object]:
    return {name: getattr(row, name) for name in SubscriptionRow.__slots__}
