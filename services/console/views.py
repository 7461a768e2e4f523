"""What each page shows, as the service gathers it for the templates."""

from dataclasses import dataclass, fields
from datetime import date, datetime

from services.console.audit_log import LogReading
from services.console.clients.applications import Application, Step, Title
from services.console.clients.cases import Dispute
from services.console.clients.casework import CaseRates
from services.console.clients.evaluation import DisputeRef, Effect
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
    case_rates: CaseRates | None


# While a dispute is in one of these states the event is disputed (docs/api.md, cases).
LIVE_DISPUTES = frozenset({"filed", "review_requested"})


@dataclass(frozen=True)
class DisputeWindow:
    """A counting event's time to dispute it as of today: the last day (None while the
    working-day calendar cannot say), the calendar days left, and its disputes."""

    until: date | None
    days_left: int | None
    disputes: list[DisputeRef]
    voided: bool = False

    @property
    def open(self) -> bool:
        return self.days_left is not None and self.days_left >= 0

    @property
    def live(self) -> DisputeRef | None:
        return next((d for d in self.disputes if d.state in LIVE_DISPUTES), None)

    @property
    def may_file(self) -> bool:
        return self.open and self.live is None and not self.voided


def window_of(effect: Effect | None, *, today: date) -> DisputeWindow | None:
    """None for an event that cannot be disputed (a work record, a correction) or that
    evaluation has not evaluated yet."""
    if effect is None or (effect.dispute_until is None and effect.dispute_until_reason is None):
        return None
    until = effect.dispute_until
    return DisputeWindow(
        until=until,
        days_left=None if until is None else (until - today).days,
        disputes=effect.disputes,
        voided=effect.state == "voided",
    )


@dataclass(frozen=True)
class EventPage:
    """The event as intake keeps it, with what evaluation made of it (None while it has not
    been evaluated yet) and its time to dispute it, and on the event's own page, where it
    stands in the audit log."""

    event: StoredEvent
    effect: Effect | None
    audit_log: LogReading | None = None
    window: DisputeWindow | None = None


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


@dataclass(frozen=True)
class DisputesPage:
    waiting: list[Dispute]  # for this bureau to decide or review, the oldest first
    disputes: list[Dispute]  # every dispute under the key's unit, the last changed first


@dataclass(frozen=True)
class DisputePage:
    dispute: Dispute
    actions: list[str]  # what the key may do now: decide, review, withdraw, review-request


Page = (
    OverviewPage
    | EventPage
    | UnitPage
    | EligiblePage
    | ApplicationsPage
    | ApplicationPage
    | DisputesPage
    | DisputePage
)


def context_of(page: Page) -> dict[str, object]:
    """The page's parts by name, as its template reads them."""
    return {part.name: getattr(page, part.name) for part in fields(page)}
