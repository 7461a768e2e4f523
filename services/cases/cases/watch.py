"""The watch over open cases' clocks: as the days pass, a duty comes due within 3 days or goes
past its last day with no step taken; each round reconciles every open case's warnings with
its clocks, a batch of cases locked at a time (as a step locks its case, so the two never
judge the same case at once)."""

import asyncio
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from services.cases.cases.clocks import clocks_of
from services.cases.cases.repository import CaseRepository
from services.cases.cases.service import facts_of
from services.cases.cases.warnings import WarningRepository
from shared.boot import Clock as Now
from shared.calendar.rules import WorkingCalendar, local_day
from shared.calendar.store import Deadlines
from shared.campaign import CaseLimits
from shared.db import Database
from shared.retry import keep_running

BATCH = 200


class ClockWatch:
    def __init__(
        self,
        *,
        db: Database,
        deadlines: Deadlines,
        limits: CaseLimits,
        clock: Now,
        interval_seconds: float,
        on_warning: Callable[[], None],
    ) -> None:
        self.db = db
        self.deadlines = deadlines
        self.limits = limits
        self.clock = clock
        self.interval_seconds = interval_seconds
        self.on_warning = on_warning

    async def run(self) -> None:
        await keep_running(self._watch, event="clock_watch_failed")

    async def _watch(self) -> None:
        while True:
            await self.round()
            await asyncio.sleep(self.interval_seconds)

    async def round(self) -> int:
        """One look at every open case; the warnings raised or cleared."""
        now = self.clock()
        calendar = await self.deadlines.store.calendar()
        async with self.db.connection() as connection:
            open_ids = await CaseRepository(connection).open_ids()
        changed = 0
        for start in range(0, len(open_ids), BATCH):
            changed += await self._batch(open_ids[start : start + BATCH], calendar, now)
        if changed:
            self.on_warning()
        return changed

    async def _batch(self, case_ids: list[UUID], calendar: WorkingCalendar, now: datetime) -> int:
        changed = 0
        async with self.db.session() as session:
            cases = await CaseRepository.from_session(session)
            warnings = await WarningRepository.from_session(session)
            rows = await cases.locked(case_ids)
            steps = await cases.steps([c.case_id for c in rows])
            for case in rows:
                clocks = clocks_of(
                    facts_of(case, steps[case.case_id]),
                    calendar=calendar,
                    limits=self.limits,
                    today=local_day(now),
                )
                changed += await warnings.reconcile(case, clocks, today=local_day(now), now=now)
        return changed
