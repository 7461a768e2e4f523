"""The subscriptions' use cases: subscribe (the target checked, the keys made), list, read,
remove, rotate the keys, list and replay the dead letters. A reader, bureau or admin key
manages the subscriptions of its own scope unit (an admin's: every one); another's is not
found."""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.webhooks.repository import (
    DeadDelivery,
    DeliveryRepository,
    Keys,
    SubscriptionRepository,
    SubscriptionRow,
)
from services.webhooks.rules import AllowList, Kind
from services.webhooks.signatures import (
    new_secret,
    new_signing_seed,
    public_key,
    secret_bytes,
)
from services.webhooks.targets import TargetRefused, checked_target
from shared.access.service import READER_ROLES, Principal
from shared.db import Database
from shared.errors import InvalidInput, NotFound, OutOfScope

Clock = Callable[[], datetime]


class SubscriptionNotFound(NotFound):
    title = "Unknown subscription"
    slug = "subscription-not-found"


@dataclass(frozen=True, slots=True)
class Subscribed:
    """A subscription as it stands, with the counts of its deliveries by state."""

    row: SubscriptionRow
    deliveries: dict[str, int]

    @property
    def public_key(self) -> str:
        return public_key(self.row.signing_seed)

    @property
    def previous_public_key(self) -> str | None:
        row = self.row
        return public_key(row.previous_signing_seed) if row.previous_signing_seed else None


@dataclass(frozen=True, slots=True)
class Issued:
    """What only the answer that makes keys shows: the secret."""

    subscribed: Subscribed
    secret: str


def _keys(secret: str | None) -> tuple[str, Keys]:
    text = secret or new_secret()
    try:
        key = secret_bytes(text)
    except ValueError as exc:
        raise InvalidInput(f"secret: {exc}") from None
    return text, Keys(key, new_signing_seed())


def _require_role(principal: Principal) -> None:
    if principal.role not in READER_ROLES:
        raise OutOfScope(f"a {principal.role} key may not manage webhooks", reason="role")


class SubscriptionsService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        allowed: AllowList,
        rotation_overlap: timedelta,
        on_replay: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.allowed = allowed
        self.rotation_overlap = rotation_overlap
        self.on_replay = on_replay

    async def subscribe(
        self, principal: Principal, *, url: str, kinds: Sequence[Kind], secret: str | None
    ) -> Issued:
        _require_role(principal)
        try:
            await checked_target(url, self.allowed)
        except TargetRefused as exc:
            raise InvalidInput(f"url: {exc}") from None
        text, keys = _keys(secret)
        now = self.clock()
        row = SubscriptionRow(
            subscription_id=uuid.uuid4(),
            key_id=principal.key_id,
            scope_code=principal.scope_code,
            url=url,
            kinds=sorted({kind.value for kind in kinds}),
            secret=keys.secret,
            signing_seed=keys.signing_seed,
            previous_secret=None,
            previous_signing_seed=None,
            previous_until=None,
            state="active",
            disabled_reason=None,
            created_at=now,
            changed_at=now,
        )
        async with self.db.session() as session:
            await (await SubscriptionRepository.from_session(session)).add(row)
        return Issued(Subscribed(row, {}), text)

    async def subscriptions(self, principal: Principal) -> list[Subscribed]:
        _require_role(principal)
        async with self.db.session() as session:
            rows = await (await SubscriptionRepository.from_session(session)).of_scope(
                principal.scope_code
            )
        return [Subscribed(row, {}) for row in rows]

    async def subscription(self, principal: Principal, subscription_id: UUID) -> Subscribed:
        async with self.db.session() as session:
            row = await self._own(session, principal, subscription_id)
            counts = await (await DeliveryRepository.from_session(session)).counts(subscription_id)
        return Subscribed(row, counts)

    async def remove(self, principal: Principal, subscription_id: UUID) -> None:
        async with self.db.session() as session:
            await self._own(session, principal, subscription_id)
            await (await SubscriptionRepository.from_session(session)).remove(subscription_id)

    async def rotate(
        self, principal: Principal, subscription_id: UUID, *, secret: str | None
    ) -> Issued:
        """New keys; the old ones sign beside them for the overlap."""
        text, keys = _keys(secret)
        now = self.clock()
        async with self.db.session() as session:
            await self._own(session, principal, subscription_id, for_update=True)
            subscriptions = await SubscriptionRepository.from_session(session)
            await subscriptions.rotate(
                subscription_id, keys, overlap_until=now + self.rotation_overlap, at=now
            )
            row = await subscriptions.get(subscription_id)
        assert row is not None
        return Issued(Subscribed(row, {}), text)

    async def dead_letters(
        self, principal: Principal, subscription_id: UUID, *, after: int, limit: int
    ) -> list[DeadDelivery]:
        async with self.db.session() as session:
            await self._own(session, principal, subscription_id)
            deliveries = await DeliveryRepository.from_session(session)
            return await deliveries.dead(subscription_id, after=after, limit=limit)

    async def replay(
        self, principal: Principal, subscription_id: UUID, *, ids: Sequence[int] | None
    ) -> int:
        """Dead deliveries (those named, or all) tried again from the first attempt."""
        async with self.db.session() as session:
            await self._own(session, principal, subscription_id)
            deliveries = await DeliveryRepository.from_session(session)
            replayed = await deliveries.replay(subscription_id, ids=ids, at=self.clock())
        if replayed:
            self.on_replay()
        return replayed

    @staticmethod
    async def _own(
        session: AsyncSession,
        principal: Principal,
        subscription_id: UUID,
        *,
        for_update: bool = False,
    ) -> SubscriptionRow:
        _require_role(principal)
        subscriptions = await SubscriptionRepository.from_session(session)
        row = await subscriptions.get(subscription_id, for_update=for_update)
        if row is None or principal.scope_code not in (None, row.scope_code):
            raise SubscriptionNotFound(f"no subscription {subscription_id} in this key's scope")
        return row
