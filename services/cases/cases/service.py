"""Registering cases and taking their steps: each checked (who, which state, which limit),
recorded with who, when and why, and written to the outbox in the same transaction; each case
read back with its clocks."""

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import orjson

from services.cases.cases.clocks import Clock, StepFact, clocks_of
from services.cases.cases.history import record_step
from services.cases.cases.repository import CaseFeedRow, CaseRepository, CaseRow, CaseStepRow
from services.cases.cases.rules import SUMMARY_ROLES, CaseSides
from services.cases.cases.transitions import Change, Situation, StepRequest, Transitions
from services.cases.cases.warnings import WarningRepository
from shared import cursors
from shared.access.models import Role
from shared.access.service import Principal
from shared.boot import Clock as Now
from shared.calendar.rules import WorkingCalendar, local_day
from shared.calendar.store import Deadlines
from shared.campaign import CaseLimits
from shared.case_steps import Action, CaseState, Channel
from shared.consumer import crash_on_purpose
from shared.db import Database
from shared.errors import (
    InvalidInput,
    NotFound,
    OutOfScope,
    PreconditionFailed,
    StateConflict,
)
from shared.keyed_hash import KeyedHash
from shared.registry.bodies import BodyRepository
from shared.registry.cache import UnitRegistry

FEED_CURSOR = "case-steps"


class CaseNotFound(NotFound):
    title = "Unknown case"
    slug = "case-not-found"


@dataclass(frozen=True)
class Registration:
    case_id: UUID
    unit_code: str
    received_at: datetime
    channel: Channel
    category: str
    petitioner_ref: str  # as the desk wrote it; kept only as its keyed hash
    headcount: int
    summary: str
    event_ids: list[UUID] = field(default_factory=list)


@dataclass(frozen=True)
class Found:
    case: CaseRow
    clocks: list[Clock]
    steps: list[CaseStepRow]
    summary: str | None  # None when the key may not read it
    duplicate: bool = False


def facts_of(case: CaseRow, steps: Sequence[CaseStepRow]) -> list[StepFact]:
    """The steps as the clocks read them; a repeat has no clocks of its own."""
    if case.state in (CaseState.repeat, CaseState.refused):
        return []
    return [StepFact(Action(s.action), s.at, s.detail) for s in steps]


class CasesService:
    def __init__(
        self,
        *,
        db: Database,
        registry: UnitRegistry,
        deadlines: Deadlines,
        clock: Now,
        petitioner_hash: KeyedHash,
        limits: CaseLimits | None = None,
        on_step: Callable[[], None] | None = None,
        on_warning: Callable[[], None] | None = None,
        crash_at: str | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.deadlines = deadlines
        self.clock = clock
        self.petitioner_hash = petitioner_hash
        self.limits = limits or CaseLimits()
        self.on_step = on_step or (lambda: None)
        self.on_warning = on_warning or (lambda: None)
        self.crash_at = crash_at
        self.sides = CaseSides(registry)
        self.transitions = Transitions(self.sides, self.limits)

    # --- registration ------------------------------------------------------------------------

    async def register(self, principal: Principal, registration: Registration) -> Found:
        now = self.clock()
        await self._check_registration(principal, registration, now)
        ref = self.petitioner_hash(registration.petitioner_ref)
        content_hash = self._content_hash(registration, ref)
        async with self.db.session() as session:
            cases = await CaseRepository.from_session(session)
            known = await cases.get(registration.case_id)
            if known is not None:
                return await self._again(principal, known, content_hash)
            await cases.lock_matter(ref, registration.category)
            matter = await cases.matter(ref, registration.category)
            state, repeat_of = CaseState.registered, None
            if matter is not None:
                repeat_of = matter[0]
                closed = matter[1] == CaseState.closed
                state = CaseState.refused if closed else CaseState.repeat
            row = CaseRow(
                case_id=registration.case_id,
                unit_code=registration.unit_code,
                first_receiver=principal.scope_code or registration.unit_code,
                owner_unit=principal.scope_code or registration.unit_code,
                owner_body=None,
                received_at=registration.received_at,
                channel=registration.channel.value,
                category=registration.category,
                petitioner_ref=ref,
                headcount=registration.headcount,
                event_ids=registration.event_ids,
                state=state.value,
                repeat_of=repeat_of,
                reviews=0,
                rating=None,
                content_hash=content_hash,
                version=1,
                registered_at=now,
                changed_at=now,
            )
            inserted = await cases.insert(row)
            if inserted is None:  # registered meanwhile under the same id
                raise StateConflict(f"case_id {registration.case_id} was just registered")
            await cases.add_summary(row.case_id, registration.summary)
            await cases.take_turn()
            detail = {"repeat_of": str(repeat_of)} if repeat_of else {}
            await record_step(
                cases,
                inserted,
                principal,
                action=Action.registered,
                at=registration.received_at,
                recorded_at=now,
                detail=detail,
            )
            await self._warn(cases, inserted, now)
            self._maybe_crash("before_commit")
        self._maybe_crash("after_commit")
        self.on_step()
        return await self.get(principal, registration.case_id)

    async def _check_registration(
        self, principal: Principal, registration: Registration, now: datetime
    ) -> None:
        if principal.role not in (Role.desk, Role.admin):
            raise OutOfScope(f"a {principal.role} key may not register cases", reason="role")
        if await self.registry.get(registration.unit_code) is None:
            raise InvalidInput(
                f"unknown unit {registration.unit_code}", errors=[{"field": "unit_code"}]
            )
        if not principal.covers(self.registry, registration.unit_code):
            raise OutOfScope(f"{registration.unit_code} is outside the key's scope")
        if registration.received_at > now:
            raise InvalidInput("received_at is in the future", errors=[{"field": "received_at"}])

    @staticmethod
    def _content_hash(registration: Registration, ref: str) -> str:
        content = {
            "unit_code": registration.unit_code,
            "received_at": registration.received_at.timestamp(),
            "channel": registration.channel.value,
            "category": registration.category,
            "petitioner_ref": ref,
            "headcount": registration.headcount,
            "summary": registration.summary,
            "event_ids": sorted(str(e) for e in registration.event_ids),
        }
        return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()

    async def _again(self, principal: Principal, known: CaseRow, content_hash: str) -> Found:
        if known.content_hash != content_hash:
            raise StateConflict(f"case_id {known.case_id} names another registration")
        found = await self.get(principal, known.case_id)
        return Found(found.case, found.clocks, found.steps, found.summary, duplicate=True)

    # --- steps -------------------------------------------------------------------------------

    async def take(
        self, principal: Principal, case_id: UUID, request: StepRequest, *, version: int
    ) -> Found:
        now = self.clock()
        at = request.at or now
        if at > now:
            raise InvalidInput("at is in the future", errors=[{"field": "at"}])
        calendar = await self.deadlines.store.calendar()
        async with self.db.session() as session:
            cases = await CaseRepository.from_session(session)
            case = await cases.get(case_id, for_update=True)
            steps = [] if case is None else (await cases.steps([case_id]))[case_id]
            if case is None or not self.sides.sees(principal, case, steps):
                raise CaseNotFound(f"no case {case_id} in the key's scope")
            if case.version != version:
                raise PreconditionFailed(
                    f"version {version} is stale: the case is at version {case.version}"
                )
            if steps and at < steps[-1].at:
                raise InvalidInput(
                    f"at is before the case's previous step ({steps[-1].at.isoformat()})",
                    errors=[{"field": "at"}],
                )
            situation = Situation(
                principal,
                case,
                steps,
                self._clocks(case, steps, calendar, at),  # as they stood when it happened
                request,
                at,
            )
            change = self.transitions.change(situation, await self._targets(cases, request))
            await cases.take_turn()
            updated = await self._apply(cases, case, change, now)
            await record_step(
                cases,
                updated,
                principal,
                action=request.action,
                at=at,
                recorded_at=now,
                reason=request.reason,
                detail=change.detail,
            )
            await self._warn(cases, updated, now)
            self._maybe_crash("before_commit")
        self._maybe_crash("after_commit")
        self.on_step()
        return await self.get(principal, case_id)

    async def _targets(self, cases: CaseRepository, request: StepRequest) -> set[tuple[str, str]]:
        """The unit a routing or forwarding names must be known; the bodies of it loaded."""
        if request.action not in (Action.routed, Action.forwarded):
            return set()
        unit, body = request.detail["unit_code"], request.detail.get("body")
        if await self.registry.get(unit) is None:
            raise InvalidInput(f"unknown unit {unit}", errors=[{"field": "to.unit_code"}])
        if body is None:
            return set()
        known = await BodyRepository(cases.connection).name_of(unit, body)
        return {(unit, body)} if known is not None else set()

    @staticmethod
    async def _apply(
        cases: CaseRepository, case: CaseRow, change: Change, now: datetime
    ) -> CaseRow:
        return await cases.update(
            case,
            state=change.state.value,
            at=now,
            owner_unit=change.owner_unit,
            owner_body=change.owner_body,
            reviews=change.reviews,
            rating=change.rating,
        )

    async def _warn(self, cases: CaseRepository, case: CaseRow, now: datetime) -> None:
        """The case's warnings as its clocks stand now, after the step."""
        steps = (await cases.steps([case.case_id]))[case.case_id]
        calendar = await self.deadlines.store.calendar()
        clocks = self._clocks(case, steps, calendar, now)
        warnings = WarningRepository(cases.connection, session=cases.session)
        if await warnings.reconcile(case, clocks, today=local_day(now), now=now):
            self.on_warning()

    def _maybe_crash(self, point: str) -> None:
        if self.crash_at == point:
            crash_on_purpose(point, steps=1)

    # --- reading -----------------------------------------------------------------------------

    def _clocks(
        self, case: CaseRow, steps: Sequence[CaseStepRow], calendar: WorkingCalendar, now: datetime
    ) -> list[Clock]:
        return clocks_of(
            facts_of(case, steps), calendar=calendar, limits=self.limits, today=local_day(now)
        )

    async def get(self, principal: Principal, case_id: UUID) -> Found:
        async with self.db.connection() as connection:
            cases = CaseRepository(connection)
            case = await cases.get(case_id)
            steps = [] if case is None else (await cases.steps([case_id]))[case_id]
            if case is None or not self.sides.sees(principal, case, steps):
                raise CaseNotFound(f"no case {case_id} in the key's scope")
            summary = await cases.summary(case_id) if principal.role in SUMMARY_ROLES else None
        calendar = await self.deadlines.store.calendar()
        return Found(case, self._clocks(case, steps, calendar, self.clock()), steps, summary)

    async def listed(
        self, principal: Principal, *, root: str | None, state: CaseState | None, overdue: bool
    ) -> list[Found]:
        """The cases the key sees under `root` (a handler: those with its body), oldest
        first; `overdue`: only those with a duty past its last day."""
        if root is not None and not principal.covers(self.registry, root):
            raise OutOfScope(f"{root} is outside the key's scope")
        async with self.db.connection() as connection:
            cases = CaseRepository(connection)
            rows = await cases.listed(state=state.value if state else None)
            rows = [c for c in rows if root is None or self._under(c, root)]
            steps = await cases.steps([c.case_id for c in rows])
        calendar = await self.deadlines.store.calendar()
        now = self.clock()
        found = [
            Found(c, self._clocks(c, steps[c.case_id], calendar, now), steps[c.case_id], None)
            for c in rows
            if self.sides.sees(principal, c, steps[c.case_id])
        ]
        if overdue:
            found = [f for f in found if any(c.is_duty and c.state == "overdue" for c in f.clocks)]
        return found

    def _under(self, case: CaseRow, root: str) -> bool:
        return any(
            self.registry.is_within(code, root)
            for code in (case.unit_code, case.owner_unit, case.first_receiver)
        )

    async def feed(
        self, principal: Principal, *, root: str | None, since: str | None, limit: int
    ) -> tuple[list[CaseFeedRow], str]:
        """The steps after the cursor `since` that the key sees under `root`, and the cursor
        after the last step examined: steps commit in step_id order, so none is skipped or
        repeated."""
        if root is not None and not principal.covers(self.registry, root):
            raise OutOfScope(f"{root} is outside the key's scope")
        if principal.role is Role.handler:
            raise OutOfScope("the cases feed is for desks, readers and bureaus", reason="role")
        after = cursors.decode_seq(FEED_CURSOR, since, field="since") if since else 0
        async with self.db.connection() as connection:
            rows = await CaseRepository(connection).feed(after=after, limit=limit)
        last = rows[-1].step.step_id if rows else after
        scope = root or principal.scope_code
        shown = [
            row
            for row in rows
            if scope is None
            or any(
                self.registry.is_within(code, scope)
                for code in (row.unit_code, row.first_receiver, row.owner_unit)
            )
        ]
        return shown, cursors.encode(FEED_CURSOR, str(last))
