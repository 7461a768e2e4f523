"""What each page shows, gathered from the services with the signed-in user's key. The
console keeps nothing of it (the feeds' cursors aside): every page reads afresh."""

import asyncio
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from openpyxl import load_workbook

from services.console.api import Services
from services.console.feeds import Feeds
from services.console.sessions import Session
from shared.cadence import Cadence, next_slot, slots_starting
from shared.campaign import ROLLING, SHANGHAI, CurrentCampaign, rolling_window
from shared.errors import NotFound, UnitNotFound
from shared.levels import CAMPAIGN_LEVELS, Level
from shared.registry.cache import UnitRef, UnitRegistry

SEARCH_LIMIT = 50
EVENTS_SHOWN = 50
SORT_KEYS = ("name", "code", "county", "township", "village")


@dataclass(frozen=True)
class Slot:
    start: date
    state: str  # held, missed, open


class ConsoleService:
    def __init__(
        self,
        *,
        services: Services,
        registry: UnitRegistry,
        campaign: CurrentCampaign,
        clock: Callable[[], datetime],
    ) -> None:
        self.services = services
        self.registry = registry
        self.campaign = campaign
        self.clock = clock
        self.feeds = Feeds(services)

    # --- what every page needs ----------------------------------------------------------

    def periods(self) -> list[str]:
        return self.campaign.get().period_ids()

    def default_period(self) -> str:
        """The newest named period that has begun (the current year once it exists)."""
        campaign = self.campaign.get()
        today = self.today()
        started = [p for p in campaign.periods if p.start <= today]
        return max(started, key=lambda p: p.start).id if started else ROLLING

    def period_or_default(self, period: str | None) -> str:
        return period if period and self.campaign.get().is_period(period) else self.default_period()

    def today(self) -> date:
        return self.clock().astimezone(SHANGHAI).date()

    def home(self, session: Session) -> str:
        """The unit a key starts from: its scope, or for an admin the registry's first top."""
        if session.scope_code:
            return session.scope_code
        tops = sorted(u.code for u in self.registry.all() if u.parent_code is None)
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
    ) -> dict[str, Any]:
        summary = await self.services.get(
            "reporting",
            "/v1/reports/summary",
            session=session,
            params={"root": root, "period": period},
        )
        children = sorted(summary["children"], key=_child_sort_key(sort), reverse=descending)
        return {
            "summary": summary,
            "levels": [
                (lvl, summary["levels"][lvl]) for lvl in CAMPAIGN_LEVELS if lvl in summary["levels"]
            ],
            "children": children,
            "open_warnings": summary["open_warnings"],
            "last_change": summary["last_changed_at"],
        }

    # --- drill-down -----------------------------------------------------------------------

    def search(self, session: Session, *, root: str, query: str) -> list[UnitRef]:
        """Units under the root whose name holds the query or whose code starts with it."""
        query = query.strip()
        if not query:
            return []
        found = []
        for unit in self.registry.all():
            if (query in unit.name or unit.code.startswith(query)) and self.registry.is_within(
                unit.code, root
            ):
                found.append(unit)
        found.sort(key=lambda u: (list(Level).index(u.level), u.code))
        return found[:SEARCH_LIMIT]

    async def unit_page(self, session: Session, *, code: str, period: str) -> dict[str, Any]:
        unit = self.unit(code)
        if unit.level not in CAMPAIGN_LEVELS:
            raise UnitNotFound(f"{unit.name} is not evaluated: only counties, townships, villages")
        periods = self.periods()
        statuses = await asyncio.gather(
            *(self._status(session, code=code, period=p) for p in periods)
        )
        chosen = statuses[periods.index(period)]
        indicators, warnings, events = await asyncio.gather(
            self.services.get(
                "reporting",
                f"/v1/units/{code}/indicators",
                session=session,
                params={"period": period},
            ),
            self.feeds.warnings(session, root=code),
            self.counting_events(session, chosen["counting_event_ids"][:EVENTS_SHOWN]),
        )
        return {
            "unit": unit,
            "statuses": list(zip(periods, statuses, strict=True)),
            "status": chosen,
            "events": events,
            "more_events": len(chosen["counting_event_ids"]) - len(events),
            "indicators": indicators,
            "calendar": self.calendar(indicators["meetings"], period=period),
            "warnings": [w for w in warnings[0] if w["unit_code"] == code],
        }

    async def _status(self, session: Session, *, code: str, period: str) -> dict[str, Any]:
        return await self.services.get(
            "reporting", f"/v1/units/{code}/status", session=session, params={"period": period}
        )

    async def counting_events(self, session: Session, event_ids: list[str]) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.event(session, i) for i in event_ids)))

    async def event(self, session: Session, event_id: str | UUID) -> dict[str, Any]:
        """The event as intake keeps it, with what evaluation made of it (None while it has
        not been evaluated yet)."""
        stored, effect = await asyncio.gather(
            self.services.get("intake", f"/v1/events/{event_id}", session=session),
            self._effect(session, event_id),
        )
        return {"event": stored, "effect": effect}

    async def _effect(self, session: Session, event_id: str | UUID) -> dict[str, Any] | None:
        try:
            return await self.services.get(
                "evaluation", f"/v1/events/{event_id}/effect", session=session
            )
        except NotFound:
            return None

    def calendar(self, meetings: dict[str, Any], *, period: str) -> list[Slot]:
        """Every slot of the period started by today: held, missed or open."""
        cadence = Cadence(meetings["cadence"])
        today = self.today()
        found = self.campaign.get().period(period)
        if found is None:
            start, _ = rolling_window(self.clock())
            first, last = start.astimezone(SHANGHAI).date() + timedelta(days=1), today
        else:
            first, last = found.start, min(found.end, today)
        missed = set(meetings["missed"])
        slots = []
        for start_day in slots_starting(first, last, cadence=cadence):
            text = start_day.isoformat()
            ended = next_slot(start_day, cadence) <= today
            state = "missed" if text in missed else "held" if ended else "open"
            slots.append(Slot(start_day, state))
        return slots

    # --- 可申报名单 -------------------------------------------------------------------------

    async def eligible(
        self, session: Session, *, root: str, period: str, level: str
    ) -> dict[str, Any]:
        params = {"root": root, "period": period, "level": level}
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await self.services.get(
                "reporting",
                "/v1/reports/eligible",
                session=session,
                params=params | {"cursor": cursor, "limit": 1000},
            )
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        workbook = await self.download(
            session,
            service="reporting",
            path="/v1/reports/eligible",
            params=params | {"format": "xlsx"},
        )
        return {"eligible": items, "not_eligible": not_eligible_rows(workbook[0])}

    async def download(
        self, session: Session, *, service: str, path: str, params: dict[str, Any]
    ) -> tuple[bytes, str, str]:
        """A file from a service: its bytes, media type and Content-Disposition."""
        response = await self.services.send(service, "GET", path, session=session, params=params)
        return (
            response.content,
            response.headers.get("content-type", "application/octet-stream"),
            response.headers.get("content-disposition", "attachment"),
        )

    # --- 登记 ------------------------------------------------------------------------------

    async def record(self, session: Session, payload: dict[str, Any]) -> dict[str, Any]:
        response = await self.services.send(
            "intake", "POST", "/v1/events", session=session, json=payload
        )
        return response.json()


def _child_sort_key(sort: str) -> Callable[[dict[str, Any]], Any]:
    if sort in ("county", "township", "village"):

        def by_ratio(child: dict[str, Any]) -> Any:
            figures = child["levels"].get(sort) or {}
            ratio = figures.get("ratio")
            return (ratio is not None, ratio or 0.0, child["unit"]["code"])

        return by_ratio
    if sort == "name":
        return lambda child: child["unit"]["name"]
    return lambda child: child["unit"]["code"]


def not_eligible_rows(workbook: bytes) -> list[dict[str, str]]:
    """The units that are not eligible and why, from the second sheet of reporting's export."""
    book = load_workbook(io.BytesIO(workbook), read_only=True)
    try:
        if len(book.worksheets) < 2:
            return []
        rows = book.worksheets[1].iter_rows(values_only=True)
        headings: list[str] | None = None
        found = []
        for row in rows:
            cells = ["" if c is None else str(c) for c in row]
            if headings is None:
                if cells and cells[0] == "单位代码":
                    headings = cells
                continue
            if any(cells):
                found.append(dict(zip(headings, cells, strict=False)))
        return found
    finally:
        book.close()
