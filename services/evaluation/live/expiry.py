"""Time passes and the registry changes: the upkeep beside the consumer.

- The rolling period moves on: a pass at start-up and then at least every `interval` seconds
  ages out what left the trailing 12 months, and a pass runs as soon as an effect dated in the
  future when its status was computed comes due.
- A new calendar-year period appears when the year turns (Asia/Shanghai).
- A registry load that moved units is followed at once: their events count against their new
  ancestors (`Upkeep.follow_registry`).

A step that fails is logged (`upkeep_failed`) and tried again with the backoff of
`shared.retry.keep_running`; a pass that failed runs again with it.
"""

import asyncio
import math

import structlog

from services.evaluation.config import Clock
from services.evaluation.live.service import EvaluationService
from services.evaluation.live.upkeep import Upkeep
from shared.campaign import CurrentCampaign
from shared.db import Database
from shared.retry import keep_running
from shared.status import UnitStatus

log = structlog.get_logger(__name__)
STEP_SECONDS = 1.0  # how often the loop looks at the registry version and pending effects


class RollingExpiry:
    def __init__(
        self,
        *,
        db: Database,
        service: EvaluationService,
        clock: Clock,
        interval: float,
        campaign: CurrentCampaign | None = None,
    ) -> None:
        self.db = db
        self.service = service
        self.upkeep = Upkeep(service)
        self.clock = clock
        self.interval = interval
        self.campaign = campaign
        self._unsettled: set[str] = set()
        self._followed_version: int | None = None  # the registry version last followed here
        self._next_pass = 0.0  # the event loop's time of the next pass at the latest

    async def run_once(self) -> list[UnitStatus]:
        """Follow the registry, then age the rolling period and take new periods."""
        changes = await self.follow_registry()
        return changes + await self.expire()

    async def expire(self) -> list[UnitStatus]:
        added = self.new_periods()
        # A batch that began before a period was added may commit after this pass: the next
        # pass looks at that period once more.
        settle, self._unsettled = self._unsettled | set(added), set(added)
        now = self.clock.now()
        async with self.db.session() as session:
            changes = await self.upkeep.expire_rolling(session, now=now)
        if settle:
            async with self.db.session() as session:
                changes += await self.upkeep.reconcile_periods(session, sorted(settle), now=now)
        if changes:
            log.info("statuses_aged", status_changes=len(changes), periods_added=added)
        return changes

    async def follow_registry(self) -> list[UnitStatus]:
        async with self.db.session() as session:
            changes = await self.upkeep.follow_registry(session, now=self.clock.now())
        self._followed_version = self.upkeep.following_version  # committed: it holds now
        if changes:
            log.info(
                "registry_followed", version=self._followed_version, status_changes=len(changes)
            )
        return changes

    def new_periods(self) -> list[str]:
        """Take the periods the clock has brought (a new calendar year); returns their ids."""
        if self.campaign is None:
            return []
        return self.service.calculator.add_periods(self.campaign.get())

    def _registry_changed(self) -> bool:
        return self.service.registry.version != self._followed_version

    def _pass_due(self, next_pass: float) -> bool:
        due = self.service.next_rolling_due
        loop = asyncio.get_running_loop()
        return loop.time() >= next_pass or (due is not None and due <= self.clock.now())

    async def run(self) -> None:
        """Until cancelled: a pass at once, then `step` after `step`."""
        self._next_pass = asyncio.get_running_loop().time()
        # Every failure is logged and backed off, however long the step ran before it.
        await keep_running(self.step, event="upkeep_failed", stable_after=math.inf)

    async def step(self) -> None:
        """Follow the registry if it changed and age the rolling period if a pass is due; then
        wait a step. The next pass is due `interval` after this one began, once it succeeded."""
        loop = asyncio.get_running_loop()
        if self._registry_changed():
            await self.follow_registry()
        if self._pass_due(self._next_pass):
            began = loop.time()
            await self.expire()
            self._next_pass = began + self.interval
        await asyncio.sleep(STEP_SECONDS)
