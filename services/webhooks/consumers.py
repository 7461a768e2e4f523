"""The topics a subscription may hear of, each read in a consumer group of its own
(`webhooks-<kind>`): every record becomes a change (`services.webhooks.changes`), and a batch's
changes become deliveries, one per subscription they reach, in one transaction; offsets are
committed after it. A batch read again makes no delivery twice (unique per subscription and
message id). Nothing here waits for a receiver: the dispatcher sends."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.webhooks import metrics
from services.webhooks.changes import READERS, Change
from services.webhooks.config import WebhooksSettings
from services.webhooks.repository import DeliveryRepository
from services.webhooks.rules import Kind
from shared.boot import Clock
from shared.consumer import BatchConsumer, DeadLetter, Record, Rejected
from shared.db import Database
from shared.registry.cache import UnitRegistry


@dataclass(frozen=True, slots=True)
class Made:
    changes: int  # read
    deliveries: int  # made from them


class ChangeConsumer(BatchConsumer[Change, Made]):
    def __init__(
        self,
        *,
        kind: Kind,
        db: Database,
        settings: WebhooksSettings,
        registry: UnitRegistry,
        clock: Clock,
        on_made: Callable[[], None] = lambda: None,
    ) -> None:
        topic, self.change_of = READERS[kind]
        super().__init__(
            name=f"webhooks-{kind.value.replace('_', '-')}",
            db=db,
            settings=settings,
            topic=getattr(settings, topic),
            group_id=settings.consumer_group(kind.value.replace("_", "-")),
            batch_size=settings.webhooks_batch_size,
        )
        self.registry = registry
        self.clock = clock
        self.on_made = on_made  # after a commit that made deliveries (the dispatcher)

    async def decode(self, record: Record) -> Change | Rejected:
        return self.change_of(record)

    async def chain(self, unit_code: str) -> str:
        """The unit and its ancestors: the scopes whose subscriptions hear of its changes."""
        await self.registry.get(unit_code)
        codes = [unit.code for unit in self.registry.ancestors(unit_code)]
        return ",".join(codes or [unit_code])

    async def apply(self, session: AsyncSession, items: Sequence[Change]) -> Made:
        chains = {code: await self.chain(code) for code in {c.unit_code for c in items}}
        deliveries = await DeliveryRepository.from_session(session)
        made = await deliveries.add([(c, chains[c.unit_code]) for c in items], at=self.clock())
        return Made(changes=len(items), deliveries=made)

    def committed(self, result: Made) -> None:
        metrics.CHANGES.inc(result.changes)
        metrics.MADE.inc(result.deliveries)
        if result.deliveries:
            self.on_made()

    async def dead_lettered(self, letters: Sequence[DeadLetter]) -> None:
        metrics.DEAD_LETTERS.inc(len(letters))


def change_consumers(
    *,
    db: Database,
    settings: WebhooksSettings,
    registry: UnitRegistry,
    clock: Clock,
    on_made: Callable[[], None],
) -> dict[str, ChangeConsumer]:
    """A consumer per kind, by task name (`webhooks-status-changes`, ...)."""
    consumers = [
        ChangeConsumer(
            kind=kind, db=db, settings=settings, registry=registry, clock=clock, on_made=on_made
        )
        for kind in Kind
    ]
    return {consumer.name: consumer for consumer in consumers}
