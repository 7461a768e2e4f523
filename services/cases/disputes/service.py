"""Filing, deciding, reviewing and withdrawing disputes: each step checked against who may
take it and when, recorded with who, when and why, and written to the outbox in the same
transaction."""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from services.cases.disputes.history import record_step
from services.cases.disputes.repository import (
    DisputeRepository,
    DisputeRow,
    EventRepository,
    FeedRow,
    KnownEvent,
    StepRow,
)
from services.cases.disputes.rules import (
    COUNTING_TYPES,
    decider_of,
    is_bureau_of,
    may_file,
    reviewer_of,
)
from services.cases.disputes.sides import Sides
from shared import cursors
from shared.access.models import Role
from shared.access.service import Principal
from shared.boot import Clock
from shared.calendar.rules import (
    YearNotCovered,
    last_day,
    local_day,
    notice_day,
    within,
)
from shared.calendar.store import Deadlines
from shared.campaign import Limit, LimitRules
from shared.consumer import crash_on_purpose
from shared.db import Database
from shared.dispute_steps import Action, Decision, Grounds, State
from shared.errors import (
    DependencyUnavailable,
    EventNotFound,
    InvalidInput,
    NotFound,
    OutOfScope,
    PreconditionFailed,
    StateConflict,
)
from shared.registry.cache import UnitRegistry

FEED_CURSOR = "dispute-steps"


class DisputeNotFound(NotFound):
    title = "Unknown dispute"
    slug = "dispute-not-found"


@dataclass(frozen=True)
class Filing:
    dispute_id: UUID
    event_id: UUID
    grounds: Grounds
    statement: str
    proposed_unit: str | None = None
    duplicate_of: UUID | None = None


@dataclass(frozen=True)
class Ruling:
    decision: Decision
    reason: str
    new_unit: str | None = None


@dataclass(frozen=True)
class Disputed:
    dispute: DisputeRow
    dispute_until: date | None
    steps: list[StepRow]
    actions: list[str] = field(default_factory=list)  # the steps the asking key may take now


class DisputesService:
    def __init__(
        self,
        *,
        db: Database,
        registry: UnitRegistry,
        deadlines: Deadlines,
        clock: Clock,
        on_step: Callable[[], None] | None = None,
        limits: LimitRules | None = None,
        crash_at: str | None = None,
    ) -> None:
        self.db = db
        self.limits = limits or LimitRules()
        self.crash_at = crash_at  # the crash tests' point in a ruling
        self.registry = registry
        self.deadlines = deadlines
        self.clock = clock
        self.on_step = on_step or (lambda: None)
        self.sides = Sides(registry)

    async def file(self, principal: Principal, filing: Filing) -> Disputed:
        now = self.clock()
        async with self.db.session() as session:
            events = await EventRepository.from_session(session)
            disputes = await DisputeRepository.from_session(session)
            if await disputes.get(filing.dispute_id) is not None:
                raise StateConflict(f"dispute_id {filing.dispute_id} names a dispute already")
            event = await events.event(filing.event_id)
            if event is None:
                raise EventNotFound(f"event {filing.event_id} is not known (yet)")
            chain = await self._chain(event.unit_code)
            await self._check_filing(principal, filing, event, chain, now)
            decider = decider_of(chain)
            if decider is None:
                raise StateConflict(f"no bureau above {event.unit_code} can decide a dispute")
            row = DisputeRow(
                dispute_id=filing.dispute_id,
                event_id=filing.event_id,
                unit_code=event.unit_code,
                grounds=filing.grounds.value,
                proposed_unit=filing.proposed_unit,
                duplicate_of=filing.duplicate_of,
                statement=filing.statement,
                filer_scope=principal.scope_code or event.unit_code,
                decider_code=decider.code,
                state=State.filed.value,
                decision=None,
                review_request_until=None,
                review=None,
                version=1,
                filed_at=now,
                changed_at=now,
            )
            filed = await disputes.insert(row)
            if filed is None:
                raise StateConflict(self._live_detail(await disputes.live_on(filing.event_id)))
            await disputes.take_turn()
            await record_step(
                session, filed, principal, action=Action.filed, reason=filing.statement, at=now
            )
        self.on_step()
        return await self.get(principal, filing.dispute_id)

    async def decide(
        self, principal: Principal, dispute_id: UUID, ruling: Ruling, *, version: int
    ) -> Disputed:
        return await self._rule(principal, dispute_id, ruling, version=version, review=False)

    async def review(
        self, principal: Principal, dispute_id: UUID, ruling: Ruling, *, version: int
    ) -> Disputed:
        return await self._rule(principal, dispute_id, ruling, version=version, review=True)

    async def request_review(
        self, principal: Principal, dispute_id: UUID, reason: str, *, version: int
    ) -> Disputed:
        now = self.clock()
        async with self.db.session() as session:
            disputes = await DisputeRepository.from_session(session)
            dispute = await self._current(disputes, dispute_id, version)
            if dispute.state != State.decided or dispute.decision is None:
                raise StateConflict(f"a dispute {dispute.state} cannot be sent for review")
            if not self.sides.lost(principal, dispute):
                raise OutOfScope("only the side the decision went against may ask for review")
            decided_on = local_day(datetime.fromisoformat(dispute.decision["at"]))
            until = await self._closed_window(decided_on, now, self.limits.review_request)
            if until is not None:
                raise InvalidInput(
                    f"too late: review could be asked for until {until}, the last day of the "
                    "limit after the decision",
                    errors=[{"field": "review_request_until", "last_day": str(until)}],
                )
            updated = await disputes.update(dispute_id, state=State.review_requested, at=now)
            await record_step(
                session,
                updated,
                principal,
                action=Action.review_requested,
                reason=reason,
                at=now,
            )
        self.on_step()
        return await self.get(principal, dispute_id)

    async def withdraw(
        self, principal: Principal, dispute_id: UUID, reason: str, *, version: int
    ) -> Disputed:
        now = self.clock()
        async with self.db.session() as session:
            disputes = await DisputeRepository.from_session(session)
            dispute = await self._current(disputes, dispute_id, version)
            if not self._is_filer(principal, dispute):
                raise OutOfScope("only the filer may withdraw a dispute")
            if dispute.state != State.filed:
                raise StateConflict(f"a dispute {dispute.state} cannot be withdrawn")
            updated = await disputes.update(dispute_id, state=State.withdrawn, at=now)
            await record_step(
                session, updated, principal, action=Action.withdrawn, reason=reason, at=now
            )
        self.on_step()
        return await self.get(principal, dispute_id)

    async def get(self, principal: Principal, dispute_id: UUID) -> Disputed:
        async with self.db.connection() as connection:
            dispute = await DisputeRepository(connection).get(dispute_id)
            if dispute is None or not self.sides.sees(principal, dispute):
                raise DisputeNotFound(f"no dispute {dispute_id} in the key's scope")
            steps = await DisputeRepository(connection).steps(dispute_id)
            event = await EventRepository(connection).event(dispute.event_id)
        until = None
        if event is not None:
            notice = notice_day(event.accepted_at, event.reported_at)
            until = (
                await self.deadlines.last_day(notice, self.limits.dispute, name="dispute")
            ).last_day
        return Disputed(dispute, until, steps, await self._actions(principal, dispute))

    async def _actions(self, principal: Principal, dispute: DisputeRow) -> list[str]:
        """The steps the key may take on the dispute now, by the same rules the steps check."""
        chain = await self._chain(dispute.unit_code)
        decider = next(u for u in chain if u.code == dispute.decider_code)
        reviewer = reviewer_of(decider, chain)
        state = State(dispute.state)
        found = []
        if state is State.filed and is_bureau_of(principal, decider.code):
            found.append("decide")
        if state is State.review_requested and reviewer and is_bureau_of(principal, reviewer.code):
            found.append("review")
        if state is State.filed and self._is_filer(principal, dispute):
            found.append("withdraw")
        if state is State.decided and self.sides.lost(principal, dispute):
            assert dispute.decision is not None
            decided_on = local_day(datetime.fromisoformat(dispute.decision["at"]))
            with contextlib.suppress(DependencyUnavailable):  # the step itself says 503
                if await self._closed_window(decided_on, self.clock(), self.limits.review_request):
                    return found
            found.append("review-request")
        return found

    @staticmethod
    def _is_filer(principal: Principal, dispute: DisputeRow) -> bool:
        return principal.role is Role.admin or principal.scope_code == dispute.filer_scope

    async def listed(
        self, principal: Principal, *, root: str | None, state: State | None
    ) -> list[tuple[DisputeRow, date | None]]:
        """The disputes the key sees under `root`, each with the last day to dispute its
        event (None when the calendar cannot say yet)."""
        if root is not None and not principal.covers(self.registry, root):
            raise OutOfScope(f"{root} is outside the key's scope")
        async with self.db.connection() as connection:
            disputes = DisputeRepository(connection)
            found = [
                d
                for d in await disputes.listed(state=state.value if state else None)
                if (root is None or self.registry.is_within(d.unit_code, root))
                and self.sides.sees(principal, d)
            ]
            notices = await disputes.notices([d.event_id for d in found])
        calendar = await self.deadlines.store.calendar()

        def until(dispute: DisputeRow) -> date | None:
            notice = notices.get(dispute.event_id)
            if notice is None:
                return None
            return last_day(calendar, notice_day(*notice), self.limits.dispute).last_day

        return [(d, until(d)) for d in found]

    async def feed(
        self, principal: Principal, *, root: str | None, since: str | None, limit: int
    ) -> tuple[list[FeedRow], str]:
        """The steps after the cursor `since` that the key sees under `root`, and the cursor
        after the last step examined: steps commit in step_id order, so none is skipped or
        repeated."""
        if root is not None and not principal.covers(self.registry, root):
            raise OutOfScope(f"{root} is outside the key's scope")
        after = cursors.decode_seq(FEED_CURSOR, since, field="since") if since else 0
        async with self.db.connection() as connection:
            rows = await DisputeRepository(connection).feed(after=after, limit=limit)
        last = rows[-1].step.step_id if rows else after
        shown = [
            row
            for row in rows
            if (root is None or self.registry.is_within(row.unit_code, root))
            and self.sides.sees(principal, row)
        ]
        return shown, cursors.encode(FEED_CURSOR, str(last))

    # --- the checks --------------------------------------------------------------------------

    async def _check_filing(
        self,
        principal: Principal,
        filing: Filing,
        event: KnownEvent,
        chain: list[Any],
        now: datetime,
    ) -> None:
        if not may_file(principal, chain):
            raise OutOfScope(f"the key may not dispute events of {event.unit_code}")
        if event.type not in COUNTING_TYPES:
            raise InvalidInput(
                f"a {event.type} cannot be disputed: only counting events can",
                errors=[{"field": "event_id", "message": "not a counting event"}],
            )
        if event.voided:
            raise StateConflict(f"event {event.event_id} is voided already")
        self._check_grounds(filing)
        if filing.proposed_unit and await self.registry.get(filing.proposed_unit) is None:
            raise InvalidInput(
                f"unknown unit {filing.proposed_unit}",
                errors=[{"field": "proposed_unit", "message": "unknown unit"}],
            )
        notice = notice_day(event.accepted_at, event.reported_at)
        until = await self._closed_window(notice, now, self.limits.dispute)
        if until is not None:
            raise InvalidInput(
                f"too late: the last day to dispute this event was {until}",
                errors=[{"field": "event_id", "message": "late", "dispute_until": str(until)}],
            )

    async def _closed_window(self, start: date, now: datetime, limit: Limit) -> date | None:
        """The limit's last day after `start` when `now` is past it; None while open.
        DependencyUnavailable (503) when the calendar cannot say yet."""
        calendar = await self.deadlines.store.calendar()
        try:
            if within(calendar, start, limit, local_day(now)):
                return None
        except YearNotCovered as missing:
            raise DependencyUnavailable(
                "calendar", f"the working-day calendar does not cover {missing.year} yet"
            ) from missing
        return last_day(calendar, start, limit).last_day

    @staticmethod
    def _check_grounds(filing: Filing) -> None:
        needs = {Grounds.not_ours: "proposed_unit", Grounds.duplicate: "duplicate_of"}
        field = needs.get(filing.grounds)
        if field and getattr(filing, field) is None:
            raise InvalidInput(
                f"grounds {filing.grounds} need {field}",
                errors=[{"field": field, "message": "required for these grounds"}],
            )

    async def _rule(
        self, principal: Principal, dispute_id: UUID, ruling: Ruling, *, version: int, review: bool
    ) -> Disputed:
        now = self.clock()
        if not ruling.reason.strip():
            raise InvalidInput("a decision needs a reason", errors=[{"field": "reason"}])
        async with self.db.session() as session:
            disputes = await DisputeRepository.from_session(session)
            dispute = await self._current(disputes, dispute_id, version)
            chain = await self._chain(dispute.unit_code)
            decider = next(u for u in chain if u.code == dispute.decider_code)
            body = reviewer_of(decider, chain) if review else decider
            expected = State.review_requested if review else State.filed
            if body is None or not is_bureau_of(principal, body.code):
                raise OutOfScope("this dispute is decided by another bureau")
            if dispute.state != expected:
                raise StateConflict(f"a dispute {dispute.state} cannot be decided now")
            self._check_ruling(principal, ruling, body.code)
            ruled = {
                "decision": ruling.decision.value,
                "new_unit": ruling.new_unit,
                "reason": ruling.reason,
                "by": body.code,
                "at": now.isoformat(),
            }
            if review:
                updated = await disputes.update(
                    dispute_id, state=State.reviewed, at=now, review=ruled
                )
            else:
                until = (
                    await self.deadlines.last_day(
                        local_day(now), self.limits.review_request, name="review"
                    )
                ).last_day
                updated = await disputes.update(
                    dispute_id,
                    state=State.decided,
                    at=now,
                    decision=ruled,
                    review_request_until=until,
                )
            action = Action.reviewed if review else Action.decided
            await record_step(
                session,
                updated,
                principal,
                action=action,
                reason=ruling.reason,
                at=now,
                detail=ruled,
            )
            self._maybe_crash("before_commit")
        self._maybe_crash("after_commit")
        self.on_step()
        return await self.get(principal, dispute_id)

    def _check_ruling(self, principal: Principal, ruling: Ruling, body_code: str) -> None:
        if ruling.decision is Decision.uphold_reattribute:
            if ruling.new_unit is None:
                raise InvalidInput(
                    "a re-attribution needs new_unit", errors=[{"field": "new_unit"}]
                )
            if not self.registry.is_within(ruling.new_unit, body_code):
                raise OutOfScope(f"{ruling.new_unit} is outside the deciding bureau's scope")

    def _maybe_crash(self, point: str) -> None:
        if self.crash_at == point:
            crash_on_purpose(point, rulings=1)

    async def _current(
        self, disputes: DisputeRepository, dispute_id: UUID, version: int
    ) -> DisputeRow:
        dispute = await disputes.get(dispute_id, for_update=True)
        if dispute is None:
            raise DisputeNotFound(f"no dispute {dispute_id}")
        if dispute.version != version:
            raise PreconditionFailed(
                f"version {version} is stale: the dispute is at version {dispute.version}"
            )
        await disputes.take_turn()
        return dispute

    async def _chain(self, unit_code: str) -> list[Any]:
        await self.registry.get(unit_code)
        return self.registry.ancestors(unit_code)

    @staticmethod
    def _live_detail(live: UUID | None) -> str:
        return f"the event has a live dispute already ({live})"
