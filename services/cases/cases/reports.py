"""The case rates of a subtree in a period: the whole subtree's, each level's within it and
each direct child's. A case belongs to the period its `received_at` falls in (`rolling`: the
12 months up to and including today) and to the subtrees of its unit (属地)."""

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from uuid import UUID

from services.cases.cases.clocks import clocks_of
from services.cases.cases.rates import Judged, Tally, rates_of
from services.cases.cases.repository import CaseRepository, CaseRow
from services.cases.cases.rules import units_under
from services.cases.cases.service import facts_of
from shared.access.service import Principal
from shared.boot import Clock as Now
from shared.calendar.rules import WorkingCalendar, local_day
from shared.calendar.store import Deadlines
from shared.campaign import SHANGHAI, Campaign, CaseLimits
from shared.case_rates import RateName
from shared.case_steps import CaseState, Rating
from shared.db import Database
from shared.errors import PeriodNotFound, UnitNotFound
from shared.registry.cache import UnitRef, UnitRegistry

ROLLING = "rolling"
# Notified whenever case steps commit (the migration's trigger on cases.case_step).
STEPS_CHANNEL = "cases_case_steps"
KEPT = 1024  # rates of that many (root, period) kept, the least recently asked dropped first
# Cases kept judged: past it the memo starts again (a province's year of cases fits; the nation's
# would not, and would only be judged again when asked).
JUDGED_KEPT = 100_000
# The case steps heard of (or minus the last step's id), the day, the registry's version, the
# calendar's edition.
Stamp = tuple[int, date, int, int]


@dataclass
class UnitRates:
    unit: UnitRef
    rates: dict[RateName, Tally]


@dataclass
class CaseRates:
    root: UnitRef
    period: str
    starts_at: datetime
    ends_at: datetime
    rates: dict[RateName, Tally]
    levels: dict[str, dict[RateName, Tally]] = field(default_factory=dict)
    children: list[UnitRates] = field(default_factory=list)
    rendered: bytes | None = None  # the answer's JSON, kept by the route once written


class CaseReports:
    def __init__(
        self,
        *,
        db: Database,
        registry: UnitRegistry,
        deadlines: Deadlines,
        campaign: Callable[[], Campaign],
        limits: CaseLimits,
        clock: Now,
    ) -> None:
        self.db = db
        self.registry = registry
        self.deadlines = deadlines
        self.campaign = campaign
        self.limits = limits
        self.clock = clock
        self._computed: OrderedDict[tuple[str, str], tuple[Stamp, CaseRates]] = OrderedDict()
        self._computing: dict[tuple[str, str], asyncio.Lock] = {}
        # Set by the change listener while it hears every step committed (`new_generation`);
        # without it each read asks the database for the last step.
        self.listening = False
        self.generation = 0
        self._calendar: WorkingCalendar | None = None
        self._calendar_edition = 0
        # Each case judged, by its version and what else its clocks depend on.
        self._judged: dict[UUID, tuple[tuple[int, tuple[date, int, int]], Judged]] = {}

    async def rates(self, principal: Principal, *, root: str, period: str) -> CaseRates:
        """The rates as of now; computed again only when a case step was taken, the day
        changed, the registry or the calendar was reloaded since they were last computed, and
        then only the cases that changed are judged again."""
        principal.require_reader_for(self.registry, root)
        unit = await self.registry.get(root)
        if unit is None:
            raise UnitNotFound(f"unknown unit {root}")
        now = self.clock()
        starts_at, ends_at = self._window(period, now)
        key = (root, period)
        if self.listening:  # the kept rates are known current without the database
            calendar = await self.deadlines.store.calendar()
            stamp = self._stamp_of(self.generation, local_day(now), calendar)
            kept = self._computed.get(key)
            if kept is not None and kept[0] == stamp:
                return kept[1]
        lock = self._computing.setdefault(key, asyncio.Lock())
        async with lock:  # readers of the same rates wait for one computation
            return await self._kept_or_computed(unit, key, now, starts_at, ends_at)

    def new_generation(self, *_: object) -> None:
        """A case step was committed (here or in another process)."""
        self.generation += 1

    async def _stamp(self, cases: CaseRepository, today: date, calendar: WorkingCalendar) -> Stamp:
        steps = self.generation if self.listening else -(await cases.last_step_id())
        return self._stamp_of(steps, today, calendar)

    def _stamp_of(self, steps: int, today: date, calendar: WorkingCalendar) -> Stamp:
        return (steps, today, self.registry.version, self._edition(calendar))

    async def _kept_or_computed(
        self,
        unit: UnitRef,
        key: tuple[str, str],
        now: datetime,
        starts_at: datetime,
        ends_at: datetime,
    ) -> CaseRates:
        today = local_day(now)
        calendar = await self.deadlines.store.calendar()
        async with self.db.connection() as connection:
            cases = CaseRepository(connection)
            stamp = await self._stamp(cases, today, calendar)
            kept = self._computed.get(key)
            if kept is not None and kept[0] == stamp:
                return kept[1]
            rows = await cases.received(starts_at, ends_at, units_under(self.registry, unit.code))
            if len(self._judged) + len(rows) > JUDGED_KEPT:
                self._judged.clear()
            stale = [
                c for c in rows if self._judged.get(c.case_id, (None,))[0] != (c.version, stamp[1:])
            ]
            steps = await cases.steps([c.case_id for c in stale])
        for case in stale:
            clocks = clocks_of(
                facts_of(case, steps[case.case_id]),
                calendar=calendar,
                limits=self.limits,
                today=today,
            )
            rating = Rating(case.rating) if case.rating else None
            self._judged[case.case_id] = (
                (case.version, stamp[1:]),
                Judged(CaseState(case.state), rating, clocks),
            )
        found = [(case, self._judged[case.case_id][1]) for case in rows]
        computed = self._grouped(unit, key[1], starts_at, ends_at, found)
        self._remember(key, stamp, computed)
        return computed

    def _edition(self, calendar: WorkingCalendar) -> int:
        """A number that changes whenever the calendar the clocks are counted on does."""
        if calendar is not self._calendar and calendar != self._calendar:
            self._calendar = calendar
            self._calendar_edition += 1
        return self._calendar_edition

    def _remember(self, key: tuple[str, str], stamp: Stamp, computed: CaseRates) -> None:
        self._computed[key] = (stamp, computed)
        self._computed.move_to_end(key)
        while len(self._computed) > KEPT:
            self._computed.popitem(last=False)

    def _grouped(
        self,
        unit: UnitRef,
        period: str,
        starts_at: datetime,
        ends_at: datetime,
        found: list[tuple[CaseRow, Judged]],
    ) -> CaseRates:
        """Each case's unit walked up once: its level, and the root's child it falls in."""
        levels: dict[str, list[Judged]] = {}
        by_child: dict[str, list[Judged]] = {c: [] for c in self.registry.children(unit.code)}
        for case, judged in found:
            chain = self.registry.ancestors(case.unit_code)
            levels.setdefault(chain[0].level.value, []).append(judged)
            child = next((u.code for u in chain if u.code in by_child), None)
            if child is not None:
                by_child[child].append(judged)
        return CaseRates(
            root=unit,
            period=period,
            starts_at=starts_at,
            ends_at=ends_at,
            rates=rates_of(j for _, j in found),
            levels={level: rates_of(judged) for level, judged in levels.items()},
            children=[
                UnitRates(self.registry.ancestors(code)[0], rates_of(judged))
                for code, judged in by_child.items()
            ],
        )

    def _window(self, period: str, now: datetime) -> tuple[datetime, datetime]:
        if period == ROLLING:
            return trailing_year(local_day(now))
        campaign = self.campaign()
        found = campaign.period(period)
        if found is None:
            known = ", ".join([*campaign.period_ids(), ROLLING])
            raise PeriodNotFound(f"no period {period!r}; the campaign has {known}")
        return found.starts_at, found.ends_at


def trailing_year(today: date) -> tuple[datetime, datetime]:
    """The 12 months up to and including `today`, whole days in Asia/Shanghai."""
    try:
        a_year_ago = today.replace(year=today.year - 1)
    except ValueError:  # 29 February
        a_year_ago = today.replace(year=today.year - 1, day=28)
    start = datetime.combine(a_year_ago + timedelta(days=1), time(), tzinfo=SHANGHAI)
    end = datetime.combine(today + timedelta(days=1), time(), tzinfo=SHANGHAI)
    return start, end
