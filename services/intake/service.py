"""Accepting events: check them against the registry and the key, then journal them together
with their outbox messages in one statement, which commits on its own. What is journalled and
published (references as keyed hashes, no free text on the topic) is built in `payloads`."""

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.intake import metrics
from services.intake.batches import (
    ItemResult,
    corrections_in,
    echoed_id,
    first_of_each,
    parsed_items,
    results_of,
)
from services.intake.config import DEFAULT_GATHERED_STATEMENTS, DEFAULT_MAX_BATCH_EVENTS
from services.intake.gathering import Gathering, Outcome, Receipt
from services.intake.payloads import (
    Pending,
    Prepared,
    journal_row,
    outbox_row,
    prepare,
)
from services.intake.repository import EventRepository, KnownTarget
from shared.access.models import Role
from shared.access.service import Principal
from shared.campaign import system_now
from shared.corrections import CORRECTION_TYPES, Correction, Refusal, covers_in, resolve
from shared.db import Database
from shared.errors import DomainError, EventConflict, EventNotFound, InvalidInput, OutOfScope
from shared.events import (
    Event,
    EventReattributed,
    EventVoided,
    PetitionVisit,
    unit_codes_of,
)
from shared.keyed_hash import KeyedHash
from shared.levels import CAMPAIGN_LEVELS, RANK
from shared.problems import problem_of
from shared.registry.cache import UnitRegistry


class IntakeService:
    def __init__(
        self,
        *,
        db: Database,
        registry: UnitRegistry,
        petitioner_secret: str,
        future_tolerance: timedelta,
        on_accepted: Callable[[], None] | None = None,
        max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS,
        gathered_statements: int = DEFAULT_GATHERED_STATEMENTS,
    ) -> None:
        """`on_accepted` is called after events were journalled (to wake the outbox relay).
        Single events are journalled by at most `gathered_statements` statements at once."""
        self.db = db
        self.max_batch_events = max_batch_events
        self._gathering = Gathering(
            self._store, statements=gathered_statements, max_events=max_batch_events
        )
        self.on_accepted = on_accepted
        self.registry = registry
        self._keyed_hash = KeyedHash(petitioner_secret)
        self.future_tolerance = future_tolerance

    # --- checks ----------------------------------------------------------------------------

    def check_batch_size(self, size: int) -> None:
        if size > self.max_batch_events:
            limit = self.max_batch_events
            raise InvalidInput(
                f"a batch holds at most {limit} events; this one has {size}",
                errors=[
                    {"field": "events", "message": f"at most {limit} events", "type": "too_long"}
                ],
            )

    async def check(
        self,
        event: Event,
        principal: Principal,
        *,
        now: datetime,
        targets: Mapping[UUID, KnownTarget] | None = None,
    ) -> str:
        """Raise InvalidInput or OutOfScope; return the code the event is keyed by (its
        county, or its city where there are no counties).
        `targets`: the known targets of a batch's corrections (looked up here if not given)."""
        units = {}
        unknown = []
        for field, code in self._unit_fields(event):
            unit = await self.registry.get(code)
            if unit is None:
                unknown.append({"field": field, "message": f"unknown unit {code}", "type": "unit"})
            units[field] = unit
        if unknown:
            raise InvalidInput("the event names units that are not in the registry", errors=unknown)
        principal.require_desk_for(self.registry, unit_codes_of(event))

        errors = []
        for field, unit in units.items():
            assert unit is not None
            if unit.level not in CAMPAIGN_LEVELS:
                errors.append(
                    {
                        "field": field,
                        "message": f"{unit.code} is a {unit.level}; events belong to a county, "
                        "township or village",
                        "type": "unit_level",
                    }
                )
        unit = units["unit_code"]
        assert unit is not None
        if isinstance(event, PetitionVisit) and RANK[event.destination_level] < RANK[unit.level]:
            errors.append(
                {
                    "field": "destination_level",
                    "message": f"a visit to the {event.destination_level} is below the unit's own "
                    f"level ({unit.level})",
                    "type": "destination_below_unit",
                }
            )
        if event.occurred_at > now + self.future_tolerance:
            errors.append(
                {
                    "field": "occurred_at",
                    "message": "occurred_at is more than 5 minutes in the future",
                    "type": "future",
                }
            )
        # Only counting events have the field: vars() finds it without the slow path pydantic
        # takes for a missing attribute (an exception), as getattr's default would for the rest.
        reported_at = vars(event).get("reported_at")
        if reported_at is not None and reported_at > now + self.future_tolerance:
            errors.append(
                {
                    "field": "reported_at",
                    "message": "reported_at is after intake accepted the event",
                    "type": "future",
                }
            )
        if (
            isinstance(event, EventVoided | EventReattributed)
            and event.target_event_id == event.event_id
        ):
            errors.append(
                {
                    "field": "target_event_id",
                    "message": "a correction cannot target itself",
                    "type": "self_target",
                }
            )
        if errors:
            raise InvalidInput("the event breaks the intake rules", errors=errors)
        if isinstance(event, EventVoided | EventReattributed):
            if targets is None:
                targets = await self.known_targets([event])
            self._check_target(event, principal, targets.get(event.target_event_id), now=now)
        return self.registry.keying_unit(unit.code)

    async def known_targets(self, events: Iterable[Event]) -> dict[UUID, KnownTarget]:
        """The journal's record of the events these corrections target."""
        ids = {e.target_event_id for e in events if isinstance(e, EventVoided | EventReattributed)}
        if not ids:
            return {}
        async with self.db.connection() as connection:
            return await EventRepository(connection).known_targets(sorted(ids))

    def _check_target(
        self,
        event: EventVoided | EventReattributed,
        principal: Principal,
        target: KnownTarget | None,
        *,
        now: datetime,
    ) -> None:
        """A correction of a known event: its target must be a counted event, and the key's
        scope must cover where the target is attributed now (and the new unit), decided as
        evaluation decides it. An unknown target is left to evaluation, as is a repeat."""
        if target is None or any(c.event_id == event.event_id for c in target.corrections):
            return
        if target.type in CORRECTION_TYPES:
            raise InvalidInput(
                "the target is a correction: only counted events are corrected",
                errors=[
                    {
                        "field": "target_event_id",
                        "message": f"{target.event_id} is a correction ({target.type})",
                        "type": "target_is_correction",
                    }
                ],
            )
        correction = Correction(
            event_id=event.event_id,
            type=event.type,
            new_unit_code=event.new_unit_code if isinstance(event, EventReattributed) else None,
            accepted_at=now,
            scope_code=principal.scope_code,
        )
        resolution = resolve(
            target.unit_code,
            [*target.corrections, correction],
            covers=covers_in(self.registry),
        )
        verdict = resolution.verdicts[event.event_id]
        if verdict.refusal is Refusal.out_of_scope:
            # Without the verdict's reason, which names where the target is attributed.
            raise OutOfScope("the event this correction targets is outside this key's scope")

    @staticmethod
    def _unit_fields(event: Event) -> list[tuple[str, str]]:
        fields = [("unit_code", event.unit_code)]
        if isinstance(event, EventReattributed):
            fields.append(("new_unit_code", event.new_unit_code))
        return fields

    def _prepare(self, event: Event, county_code: str) -> Prepared:
        return prepare(event, county_code=county_code, keyed_hash=self._keyed_hash)

    # --- accepting -------------------------------------------------------------------------

    async def accept(self, *, event: Event, principal: Principal, correlation_id: str) -> Receipt:
        county = await self.check(event, principal, now=system_now())
        # Accepted when it joins the others waiting: their statement journals and publishes
        # them in that order.
        result = await self._gathering.store(
            Pending(
                self._prepare(event, county),
                key_id=principal.key_id,
                correlation_id=correlation_id,
                accepted_at=system_now(),
            )
        )
        if isinstance(result, DomainError):
            raise result
        return result

    async def accept_batch(
        self,
        *,
        items: list[Any],
        principal: Principal,
        correlation_id: str,
        dry_run: bool = False,
        derive_ids: bool = False,
    ) -> list[ItemResult]:
        """A result per item. `dry_run`: what the batch would answer, nothing stored.
        `derive_ids`: each item's id is a seed, the event's id keyed from it."""
        now = system_now()
        derive = self._keyed_hash.event_id if derive_ids else None
        parsed = parsed_items(items, derive=derive)
        if invalid := sum(isinstance(p, ItemResult) for p in parsed):
            metrics.rejected.labels("validation").inc(invalid)
        events = [e for e in parsed if not isinstance(e, ItemResult)]
        targets = await self.known_targets(events) | corrections_in(events)
        slots: list[ItemResult | Prepared] = []
        for entry, item in zip(parsed, items, strict=True):
            if isinstance(entry, ItemResult):
                slots.append(entry)
                continue
            try:
                county = await self.check(entry, principal, now=now, targets=targets)
                slots.append(self._prepare(entry, county))
            except (InvalidInput, OutOfScope) as exc:
                result = ItemResult(echoed_id(item, derive=derive), "rejected", problem_of(exc))
                slots.append(result)
                metrics.rejected.labels(exc.slug).inc()
        pending = first_of_each(
            [s for s in slots if isinstance(s, Prepared)],
            key_id=principal.key_id,
            correlation_id=correlation_id,
            now=now,
        )
        outcome = await (self._preview(pending) if dry_run else self._store(pending))
        return results_of(slots, outcome)

    async def _preview(self, pending: list[Pending]) -> dict[UUID, Outcome]:
        """What storing would answer: new events accepted, repeats and conflicts as the
        journal holds them now; nothing stored."""
        async with self.db.connection() as connection:
            existing = await EventRepository(connection).receipts([p.event_id for p in pending])
        new = {p.event_id: p.accepted_at for p in pending if p.event_id not in existing}
        return _outcomes(pending, inserted=new, existing=existing)

    async def _store(self, pending: list[Pending]) -> dict[UUID, Outcome]:
        """Journal the new events (distinct ids) with their outbox messages; classify the
        rest as repeats or conflicts."""
        # Journal rows go in event-id order, the same lock order in every transaction.
        rows = [journal_row(p) for p in sorted(pending, key=attrgetter("event_id"))]
        # The outbox keeps the order given: that is the order per county on the topic. Only
        # the messages of events new to the journal are stored, in the same statement.
        messages = [(p.event_id, outbox_row(p)) for p in pending]
        async with self.db.connection(commits=True) as connection:
            store = EventRepository(connection)
            inserted = await store.insert_new(rows, messages=messages)
            existing = await store.receipts(
                [p.event_id for p in pending if p.event_id not in inserted]
            )
        if inserted and self.on_accepted is not None:
            self.on_accepted()
        outcome = _outcomes(pending, inserted=inserted, existing=existing)
        metrics.count_outcomes((p.prepared.event.type, outcome[p.event_id]) for p in pending)
        return outcome

    # --- reading ---------------------------------------------------------------------------

    async def get(
        self, session: AsyncSession, *, event_id: UUID, principal: Principal
    ) -> dict[str, Any]:
        repository = await EventRepository.from_session(session)
        row = await repository.get(event_id)
        if row is None:
            raise EventNotFound(f"no event {event_id}")
        if not principal.covers(self.registry, row.unit_code):
            raise OutOfScope("this event is outside the key's scope")
        corrections = await repository.corrections_of(event_id)
        # What people wrote goes to those who post in the scope, not to every reader of it.
        free_text = principal.role in (Role.desk, Role.admin)
        return _as_stored(row, free_text=free_text) | {
            "corrections": [_as_stored(c, free_text=free_text) for c in corrections]
        }


def _as_stored(row: Any, *, free_text: bool) -> dict[str, Any]:
    written = row.free_text if free_text and row.free_text else {}
    return dict(row.payload) | written | {"accepted_at": row.accepted_at, "key_id": row.key_id}


def _outcomes(
    pending: list[Pending], *, inserted: Mapping[UUID, datetime], existing: Mapping[UUID, Any]
) -> dict[UUID, Outcome]:
    """New events accepted; the rest repeats of what the journal holds, or conflicts."""
    outcome: dict[UUID, Outcome] = {
        event_id: Receipt(event_id, accepted_at, duplicate=False)
        for event_id, accepted_at in inserted.items()
    }
    hashes = {p.event_id: p.prepared.content_hash for p in pending}
    for event_id, stored in existing.items():
        if stored.content_hash == hashes[event_id]:
            outcome[event_id] = Receipt(event_id, stored.accepted_at, duplicate=True)
        else:
            outcome[event_id] = EventConflict(
                f"event {event_id} was already accepted with other content"
            )
    return outcome
