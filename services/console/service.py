"""What each page shows, gathered from the services with the signed-in user's key. The
console keeps nothing of it (the feeds' cursors aside): every page reads afresh."""

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from services.console.audit_log import read_log
from services.console.clients import Clients
from services.console.clients.casework import CaseRates, CaseworkClient
from services.console.clients.http import Download
from services.console.clients.reporting import ChildSummary, Meetings
from services.console.feeds import Feeds
from services.console.sessions import Session
from services.console.views import (
    EligiblePage,
    EventPage,
    OverviewPage,
    Slot,
    UnitPage,
    window_of,
)
from shared.cadence import next_slot, slots_starting
from shared.campaign import ROLLING, SHANGHAI, CurrentCampaign, rolling_window
from shared.errors import DependencyUnavailable, UnitNotFound
from shared.levels import CAMPAIGN_LEVELS, Level
from shared.registry.cache import UnitRef, UnitRegistry

SEARCH_LIMIT = 50
EVENTS_SHOWN = 50
SORT_KEYS = ("name", "code", "county", "township", "village")


class ConsoleService:
    def __init__(
        self,
        *,
        clients: Clients,
        registry: UnitRegistry,
        campaign: CurrentCampaign,
        clock: Callable[[], datetime],
    ) -> None:
        self.clients = clients
        self.registry = registry
        self.campaign = campaign
        self.clock = clock
        self.feeds = Feeds(clients.reporting)
        self.casework = CaseworkClient(clients.cases.http)

    # --- what every page needs ----------------------------------------------------------

    def periods(self) -> list[str]:
        return self.campaign.get().period_ids()

    def default_period(self) -> str:
        """The newest named period that has begun (the current year once it exists)."""
        campaign = self.campaign.get()
        today = self.today()
        started = [p for p in campaign.periods if p.start <= today]
        return max(started, key=lambda p: p.start).id if started else ROLLING

    def today(self) -> date:
        return self.clock().astimezone(SHANGHAI).date()

    def home(self, session: Session) -> str:
        """The unit a key starts from: its scope, or for an admin the registry's first top."""
        if session.scope_code:
            return session.scope_code
        tops = self.registry.roots()
        if not tops:
            raise UnitNotFound("the unit registry is empty")
        return tops[0]

    def unit(self, code: str) -> UnitRef:
        unit = self.registry.get_cached(code)
        if unit is None:
            raise UnitNotFound(f"no unit {code}")
        return unit

    def trail(self, session: Session, code: str) -> list[UnitRef]:
        """The unit's ancestors from the key's home down to the unit (for the breadcrumb)."""
        chain = list(reversed(self.registry.ancestors(code)))
        home = session.scope_code
        if home is None:
            return chain
        codes = [u.code for u in chain]
        return chain[codes.index(home) :] if home in codes else chain[-1:]

    # --- 总览 -----------------------------------------------------------------------------

    async def overview(
        self, session: Session, *, root: str, period: str, sort: str, descending: bool
    ) -> OverviewPage:
        summary, case_rates = await asyncio.gather(
            self.clients.reporting.summary(session, root=root, period=period),
            self._case_rates_if_answered(session, root=root, period=period),
        )
        return OverviewPage(
            levels=[(lvl, summary.levels[lvl]) for lvl in CAMPAIGN_LEVELS if lvl in summary.levels],
            children=sorted(summary.children, key=_child_sort_key(sort), reverse=descending),
            open_warnings=summary.open_warnings,
            last_change=summary.last_changed_at,
            case_rates=case_rates,
        )

    async def _case_rates_if_answered(
        self, session: Session, *, root: str, period: str
    ) -> CaseRates | None:
        """The case rates beside the three-no figures; none while the cases service is down,
        so the overview still shows what reporting knows."""
        try:
            return await self.casework.rates(session, root=root, period=period)
        except DependencyUnavailable:
            return None

    # --- drill-down -----------------------------------------------------------------------

    def search(self, session: Session, *, root: str, query: str) -> list[UnitRef]:
        """Units under the root whose name holds the query or whose code starts with it."""
        query = query.strip()
        if not query:
            return []
        return self.registry.search(query, within=root, limit=SEARCH_LIMIT)

    async def unit_page(self, session: Session, *, code: str, period: str) -> UnitPage:
        unit = self.unit(code)
        if unit.level not in CAMPAIGN_LEVELS:
            raise UnitNotFound(f"{unit.name} is not evaluated: only counties, townships, villages")
        reporting = self.clients.reporting
        periods = self.periods()
        statuses = await asyncio.gather(
            *(reporting.status(session, code=code, period=p) for p in periods)
        )
        chosen = statuses[periods.index(period)]
        indicators, warnings, events = await asyncio.gather(
            reporting.indicators(session, code=code, period=period),
            self.feeds.warnings(session, root=code),
            self.counting_events(session, chosen.counting_event_ids[:EVENTS_SHOWN]),
        )
        return UnitPage(
            unit=unit,
            statuses=list(zip(periods, statuses, strict=True)),
            status=chosen,
            events=events,
            more_events=len(chosen.counting_event_ids) - len(events),
            indicators=indicators,
            calendar=self.calendar(indicators.meetings, period=period),
            warnings=[w for w in warnings[0] if w.unit_code == code],
        )

    async def counting_events(self, session: Session, event_ids: list[str]) -> list[EventPage]:
        return list(await asyncio.gather(*(self.event(session, i) for i in event_ids)))

    async def event(self, session: Session, event_id: str | UUID) -> EventPage:
        stored, effect = await asyncio.gather(
            self.clients.intake.event(session, event_id),
            self.clients.evaluation.effect(session, event_id),
        )
        return EventPage(event=stored, effect=effect, window=window_of(effect, today=self.today()))

    async def event_in_log(self, session: Session, event_id: UUID) -> EventPage:
        """The event's own page: the event, its effect and its place in the audit log."""
        page, audit_log = await asyncio.gather(
            self.event(session, event_id),
            read_log(self.clients.audit, session, kind="event", record_ids=[str(event_id)]),
        )
        return replace(page, audit_log=audit_log)

    def calendar(self, meetings: Meetings, *, period: str) -> list[Slot]:
        """Every slot of the period started by today: held, missed or open."""
        today = self.today()
        found = self.campaign.get().period(period)
        if found is None:
            start, _ = rolling_window(self.clock())
            first, last = start.astimezone(SHANGHAI).date() + timedelta(days=1), today
        else:
            first, last = found.start, min(found.end, today)
        missed = set(meetings.missed)
        slots = []
        for start_day in slots_starting(first, last, cadence=meetings.cadence):
            ended = next_slot(start_day, meetings.cadence) <= today
            state = "missed" if start_day in missed else "held" if ended else "open"
            slots.append(Slot(start_day, state))
        return slots

    # --- 可申报名单 -------------------------------------------------------------------------

    async def eligible(
        self, session: Session, *, root: str, period: str, level: str
    ) -> EligiblePage:
        reporting = self.clients.reporting
        eligible, not_eligible = await asyncio.gather(
            reporting.eligible(session, root=root, period=period, level=level),
            reporting.not_eligible(session, root=root, period=period, level=level),
        )
        return EligiblePage(eligible=eligible, not_eligible=not_eligible)

    async def eligible_file(
        self, session: Session, *, root: str, period: str, level: str, file_format: str
    ) -> Download:
        return await self.clients.reporting.eligible_file(
            session, root=root, period=period, level=level, file_format=file_format
        )

    # --- 登记 ------------------------------------------------------------------------------

    async def record(self, session: Session, event: dict[str, Any]) -> None:
        await self.clients.intake.record(session, event)


def _child_sort_key(sort: str) -> Callable[[ChildSummary], Any]:
    if sort in ("county", "township", "village"):
        level = Level(sort)

        def by_ratio(child: ChildSummary) -> Any:
            figures = child.levels.get(level)
            ratio = figures.ratio if figures else None
            return (ratio is not None, ratio or 0.0, child.unit.code)

        return by_ratio
    if sort == "name":
        return lambda child: child.unit.name
    return lambda child: child.unit.code
