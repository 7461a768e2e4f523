"""Time passes: the rolling period ages (a pass at start-up and then at least hourly), and a
new calendar-year period appears when the year turns."""

import asyncio
from collections.abc import Callable

import structlog

from services.evaluation.config import Clock
from services.evaluation.service import EvaluationService
from shared.campaign import Campaign
from shared.db import Database
from shared.status import UnitStatus

log = structlog.get_logger(__name__)
RETRY_SECONDS = 10.0


class RollingExpiry:
    def __init__(
        self,
        *,
        db: Database,
        service: EvaluationService,
        clock: Clock,
        interval: float,
        load_campaign: Callable[[], Campaign] | None = None,
    ) -> None:
        self.db = db
        self.service = service
        self.clock = clock
        self.interval = interval
        self.load_campaign = load_campaign
        self._unsettled: set[str] = set()

    async def run_once(self) -> list[UnitStatus]:
        added = self._new_periods()
        # A batch that began before a period was added may commit after this pass: the next
        # pass looks at that period once more.
        settle, self._unsettled = self._unsettled | set(added), set(added)
        now = self.clock.now()
        async with self.db.session() as session:
            changes = await self.service.expire_rolling(session, now=now)
        if settle:
            async with self.db.session() as session:
                changes += await self.service.reconcile_periods(session, sorted(settle), now=now)
        if changes:
            log.info("statuses_aged", status_changes=len(changes), periods_added=added)
        return changes

    def _new_periods(self) -> list[str]:
        if self.load_campaign is None:
            return []
        try:
            return self.service.add_periods(self.load_campaign())
        except Exception as exc:
            log.warning("campaign_reload_failed", error=str(exc))
            return []

    async def run(self) -> None:
        while True:
            pause = self.interval
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                pause = min(self.interval, RETRY_SECONDS)
                log.warning("rolling_expiry_failed", error=repr(exc), retry_in=pause)
            await asyncio.sleep(pause)
