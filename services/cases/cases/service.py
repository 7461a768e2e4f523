"""Registering cases and taking their steps: each checked (who, which state, which limit),
recorded with who, when and why, and written to the outbox in the same transaction; each case
read back with its clocks."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from services.cases.cases.clocks import Clock, StepFact, clocks_of
from services.cases.cases.history import record_step
from services.cases.cases.registering import Registered, Registrar, Registration
from services.cases.cases.repository import CaseFeedRow, CaseRepository, CaseRow, CaseStepRow
from services.cases.cases.rules import SUMMARY_ROLES, CaseSides, units_under
from services.cases.cases.transitions import Change, Situation, StepRequest, Transitions
from services.cases.cases.warnings import WarningRepository
from shared import cursors
from shared.access.models import Role
from shared.access.service import Principal
from shared.boot import Clock as Now
from shared.calendar.rules import WorkingCalendar, local_day
from shared.calendar.store import Deadlines
from shared.campaign import CaseLimits
from shared.case_steps import Action, CaseState
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
class Found:
    case: CaseRow
    clocks: list[Clock]
    steps: list[CaseStepRow]
    summary: str | None  # None when the key may not read it
    duplicate: bool = False
    actions: list[str] = field(default_factory=list)  # the steps the key may take now


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
        self.registrar = Registrar(
            registry=registry, petitioner_hash=petitioner_hash, warn=self._warn
        )

    # --- registration ------------------------------------------------------------------------

    async def register(self, principal: Principal, registration: Registration) -> Found:
        now = self.clock()
        await self.registrar.check(principal, registration, now)
        async with self.db.session() as session:
            cases = await CaseRepository.from_session(session)
            known = await cases.get(registration.case_id)
            if known is not None:
                return await self._again(
                    principal, known, self.registrar.content_hash(registration)
                )
            case, step = await self.registrar.registered(
                cases, principal, registration, now, take_turn=True
            )
            self._maybe_crash("before_commit")
        self._maybe_crash("after_commit")
        self.on_step()
        return await self._found(principal, case, [step], registration.summary)

    async def register_batch(
        self, principal: Principal, registrations: Sequence[Registration]
    ) -> list[Registered]:
        """Each registration checked and registered as one alone would be, in one
        transaction; a refused one (its result says why) does not stop the others."""
        now = self.clock()
        async with self.db.session() as session:
            cases = await CaseRepository.from_session(session)
            await cases.take_turn()  # held for the batch: its steps commit together
            results = await self.registrar.batch(cases, principal, registrations, now)
        if any(r.state is not None for r in results):
            self.on_step()
        return results

    async def _again(self, principal: Principal, known: CaseRow, content_hash: str) -> Found:
        if known.content_hash != content_hash:
            raise StateConflict(f"case_id {known.case_id} names another registration")
        return replace(await self.get(principal, known.case_id), duplicate=True)

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
                now,
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

    async def _warn(
        self,
        cases: CaseRepository,
        case: CaseRow,
        now: datetime,
        steps: list[CaseStepRow] | None = None,
    ) -> None:
        """The case's warnings as its clocks stand now, after the step. `steps`: all of a
        case just registered (which has no warnings yet), else read here."""
        new = steps is not None
        if steps is None:
            steps = (await cases.steps([case.case_id]))[case.case_id]
        calendar = await self.deadlines.store.calendar()
        clocks = self._clocks(case, steps, calendar, now)
        warnings = WarningRepository(cases.connection, session=cases.session)
        if await warnings.reconcile(case, clocks, today=local_day(now), now=now, new=new):
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
        return await self._found(principal, case, steps, summary)

    async def _found(
        self, principal: Principal, case: CaseRow, steps: list[CaseStepRow], summary: str | None
    ) -> Found:
        """The case as the key may see it: its clocks, and the steps it may take now."""
        calendar = await self.deadlines.store.calendar()
        now = self.clock()
        clocks = self._clocks(case, steps, calendar, now)
        offered = Situation(principal, case, steps, clocks, StepRequest(Action.agent), now, now)
        actions = self.transitions.allowed(offered)
        shown = summary if principal.role in SUMMARY_ROLES else None
        return Found(case, clocks, steps, shown, actions=actions)

    async def listed(
        self, principal: Principal, *, root: str | None, state: CaseState | None, overdue: bool
    ) -> list[Found]:
        """The cases the key sees under `root` (a handler: those with its body), oldest
        first; `overdue`: only those with a duty past its last day."""
        if root is not None and not principal.covers(self.registry, root):
            raise OutOfScope(f"{root} is outside the key's scope")
        async with self.db.connection() as connection:
            cases = CaseRepository(connection)
            codes = None if root is None else units_under(self.registry, root)
            rows = await cases.listed(state=state.value if state else None, units=codes)
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
