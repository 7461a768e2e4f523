"""The evaluation's work as time passes and the registry changes: the rolling period ages
out, registry moves are followed, and periods added while running are reconciled. Each runs in
the caller's transaction, with `EvaluationService` computing and publishing the statuses."""

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.evaluation import metrics
from services.evaluation.live.effects import rolling_window_of
from services.evaluation.live.service import EvaluationService
from services.evaluation.records import Effect, StatusWindow
from shared.campaign import rolling_window
from shared.status import UnitStatus

FOLLOW_CHUNK = 5_000  # events re-evaluated at a time after a registry move


class Upkeep:
    def __init__(self, service: EvaluationService) -> None:
        self.service = service
        self.registry = service.registry
        # The registry version the last `follow_registry` brought the effects to.
        self.following_version: int | None = None

    async def expire_rolling(self, session: AsyncSession, *, now: datetime) -> list[UnitStatus]:
        """Move the rolling period to `now`: recompute the units whose effects left the window
        since the last pass (where nothing else counts they become clean), and those with an
        effect that was dated in the future when their status was computed and whose time has
        come."""
        service = self.service
        work = await service.unit_of_work(session)
        repository = work.upkeep
        previous = await repository.rolling_window_start()
        start = rolling_window(now)[0]
        units = await repository.take_due_rolling(now)
        if previous is None or start > previous:
            units |= set(await work.repository.units_with_effects_between(previous, start))
            await repository.set_rolling_window_start(start)
        # Never older than a pass that ran with a later clock (another instance's).
        start = start if previous is None else max(start, previous)
        windows = [rolling_window_of(unit, start=start, now=now) for unit in sorted(units)]
        statuses = await service.recompute_windows(work, windows, now=now, correlation={})
        service.next_rolling_due = await repository.next_rolling_due()
        service.calculator.passed_rolling(previous)
        metrics.rolling_expired.inc(len(statuses))
        return statuses

    async def follow_registry(self, session: AsyncSession, *, now: datetime) -> list[UnitStatus]:
        """Make the effects follow the registry as loaded now. The events attributed to the
        units that loads since the followed version moved (a village to another township,
        townships merged), or to units under them, count against their new ancestors and no
        longer against the old ones; the statuses of both are recomputed and published. No
        batch runs meanwhile, and a registry version is followed once, also by several
        instances or after a restart."""
        service = self.service
        work = await service.unit_of_work(session, exclusive=True)
        repository = work.upkeep
        followed = await repository.followed_registry_version() or 0
        await self.registry.refresh()
        version = self.following_version = self.registry.version
        if followed >= version:
            return []
        moved = await repository.units_moved(followed, version)
        event_ids = await repository.events_attributed_to(self._subtrees(moved))
        changed: list[Effect] = []
        for first in range(0, len(event_ids), FOLLOW_CHUNK):
            chunk = event_ids[first : first + FOLLOW_CHUNK]
            changed += await service.reevaluate(work.repository, chunk)
        statuses = await service.recompute(work, changed, now=now)
        await service.reconsider_warnings(session, touched=event_ids)
        await repository.set_followed_registry_version(version)
        metrics.registry_moves_followed.inc(len(event_ids))
        return statuses

    def _subtrees(self, codes: Iterable[str]) -> set[str]:
        """The units and everything under them. A unit that was under one of them at some
        version in between and is not now was moved itself, so it is among `codes` too."""
        found: set[str] = set()
        pending = list(codes)
        while pending:
            code = pending.pop()
            if code not in found:
                found.add(code)
                pending += self.registry.children(code)
        return found

    async def reconcile_periods(
        self, session: AsyncSession, period_ids: Iterable[str], *, now: datetime
    ) -> list[UnitStatus]:
        """Recompute every unit with an effect in these periods (added while events in them
        were already being applied)."""
        work = await self.service.unit_of_work(session)
        windows = []
        for period_id in period_ids:
            period = self.service.campaign.period(period_id)
            if period is None:
                continue
            units = await work.repository.units_with_effects_in(period.starts_at, period.ends_at)
            windows += [
                StatusWindow(unit, period.id, period.starts_at, period.ends_at) for unit in units
            ]
        return await self.service.recompute_windows(work, windows, now=now, correlation={})
