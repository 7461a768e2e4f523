"""What each page shows, as the service gathers it for the templates."""

from dataclasses import dataclass, fields
from datetime import date, datetime

from services.console.audit_log import LogReading
from services.console.clients.applications import Application, Step, Title
from services.console.clients.evaluation import Effect
from services.console.clients.intake import StoredEvent
from services.console.clients.reporting import (
    ChildSummary,
    EarlyWarning,
    Indicators,
    LevelFigures,
    NotEligibleUnit,
    Unit,
    UnitStatus,
)
from shared.levels import Level
from shared.registry.cache import UnitRef


@dataclass(frozen=True)
class Slot:
    start: date
    state: str  # held, missed, open


@dataclass(frozen=True)
class OverviewPage:
    levels: list[tuple[Level, LevelFigures]]
    children: list[ChildSummary]
    open_warnings: int
    last_change: datetime | None


@dataclass(frozen=True)
class EventPage:
    """The event as intake keeps it, with what evaluation made of it (None while it has not
    been evaluated yet), and on the event's own page, where it stands in the audit log."""

    event: StoredEvent
    effect: Effect | None
    audit_log: LogReading | None = None


@dataclass(frozen=True)
class UnitPage:
    unit: UnitRef
    statuses: list[tuple[str, UnitStatus]]  # by period
    status: UnitStatus  # in the chosen period
    events: list[EventPage]
    more_events: int
    indicators: Indicators
    calendar: list[Slot]
    warnings: list[EarlyWarning]


@dataclass(frozen=True)
class EligiblePage:
    eligible: list[Unit]
    not_eligible: list[NotEligibleUnit]


@dataclass(frozen=True)
class ApplicationsPage:
    applications: list[Application]  # the last changed first
    titles: list[Title]


@dataclass(frozen=True)
class ApplicationPage:
    application: Application
    steps: list[Step]
    audit_log: LogReading  # of the steps


Page = OverviewPage | EventPage | UnitPage | EligiblePage | ApplicationsPage | ApplicationPage


def context_of(page: Page) -> dict[str, object]:
    """The page's parts by name, as its template reads them."""
    return {part.name: getattr(page, part.name) for part in fields(page)}
