"""Reading work-record indicators and warnings from the read model: a unit's indicators as of
today, the figures the summary adds per level, the columns the exports add, the warnings feed.
Access is checked by the caller (`ReportingService`)."""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from services.reporting.records import StoredIndicators, meetings_of, period_days
from services.reporting.repository import IndicatorRepository, WarningRepository
from services.reporting.schemas import (
    IndicatorsOut,
    MeetingsOut,
    RatingsOut,
    SatisfactionOut,
    UnitOut,
    WarningOut,
    WarningPageOut,
)
from services.reporting.tree import UnitTree
from shared import cursors
from shared.cadence import Cadence, MeetingCadence, cadence_of
from shared.campaign import SHANGHAI, Campaign
from shared.db import Database
from shared.early_warning import WarningKind
from shared.events import Rating, RatingSource
from shared.indicators import RatingCounts
from shared.levels import Level
from shared.registry.cache import UnitRef, UnitRegistry

WARNING_CURSOR = "w1"
CHUNK = 5000


def ratings_out(counts: RatingCounts, satisfied: frozenset[Rating]) -> RatingsOut:
    return RatingsOut(total=counts.total, rate=counts.rate(satisfied), **counts.model_dump())


def meetings_out(meetings: MeetingCadence) -> MeetingsOut:
    return MeetingsOut(
        cadence=meetings.cadence,
        required=meetings.required,
        held=meetings.held,
        missed=meetings.missed,
        open=meetings.open,
        compliance=meetings.compliance,
        kept=meetings.kept,
    )


@dataclass
class WorkFigures:
    """What the summary adds for one unit and level."""

    cadence_kept: int = 0
    ratings: RatingCounts = field(default_factory=RatingCounts)

    def __add__(self, other: "WorkFigures") -> "WorkFigures":
        whole = WorkFigures(self.cadence_kept, self.ratings)
        whole.add(other.cadence_kept, other.ratings)
        return whole

    def add(self, kept: bool | int, ratings: RatingCounts) -> None:
        self.cadence_kept += kept
        self.ratings = RatingCounts(
            satisfied=self.ratings.satisfied + ratings.satisfied,
            basically_satisfied=self.ratings.basically_satisfied + ratings.basically_satisfied,
            dissatisfied=self.ratings.dissatisfied + ratings.dissatisfied,
        )


@dataclass(frozen=True, slots=True)
class UnitRecords:
    """A unit's cadence and satisfaction rate, as the exports show them."""

    meetings: MeetingCadence
    satisfaction_rate: float | None


class RecordReads:
    def __init__(
        self,
        *,
        db: Database,
        registry: UnitRegistry,
        tree: UnitTree,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.registry = registry
        self.tree = tree
        self.clock = clock

    def today(self) -> date:
        return self.clock().astimezone(SHANGHAI).date()

    def _cadence(self, campaign: Campaign, level: Level) -> Cadence:
        return campaign.work_records.cadence[level]

    async def indicators(
        self, *, campaign: Campaign, unit: UnitRef, unit_out: UnitOut, period: str
    ) -> IndicatorsOut:
        async with self.db.connection() as connection:
            stored = await IndicatorRepository(connection).indicators(unit.code, period)
        meetings = meetings_of(
            stored,
            cadence=self._cadence(campaign, unit.level),
            days=period_days(campaign, period, self.clock()),
            today=self.today(),
        )
        satisfied = campaign.work_records.satisfied_ratings
        ratings = stored.ratings if stored else {}
        total = stored.all_ratings() if stored else RatingCounts()
        return IndicatorsOut(
            unit=unit_out,
            period=period,
            meetings=meetings_out(meetings),
            satisfaction=SatisfactionOut(
                **ratings_out(total, satisfied).model_dump(),
                by_source={
                    source: ratings_out(ratings.get(source, RatingCounts()), satisfied)
                    for source in RatingSource
                },
            ),
            changed_at=stored.changed_at if stored else None,
            version=stored.version if stored else 0,
        )

    async def summary_figures(
        self,
        *,
        campaign: Campaign,
        root: UnitRef,
        children: list[UnitRef],
        period: str,
        levels: list[Level],
    ) -> dict[tuple[str, Level], WorkFigures]:
        """Per (root or child, level): units keeping their cadence as of today, and ratings."""
        days = period_days(campaign, period, self.clock())
        today = self.today()
        child_codes = {c.code for c in children}
        figures: dict[tuple[str, Level], WorkFigures] = defaultdict(WorkFigures)
        async with self.db.connection() as connection:
            repository = IndicatorRepository(connection)
            for level in levels:
                ended = meetings_of(
                    None, cadence=self._cadence(campaign, level), days=days, today=today
                ).missed
                stored = {}
                members = self.tree.members(root.code, level)
                for start in range(0, len(members), CHUNK):
                    codes = [m.code for m in members[start : start + CHUNK]]
                    for row in await repository.kept_among(period, codes, ended_slots=ended):
                        stored[row["unit_code"]] = row
                for member in members:
                    row = stored.get(member.code)
                    kept = bool(row["kept"]) if row else not ended
                    ratings = (
                        RatingCounts(
                            satisfied=row["satisfied"],
                            basically_satisfied=row["basically_satisfied"],
                            dissatisfied=row["dissatisfied"],
                        )
                        if row
                        else RatingCounts()
                    )
                    figures[(root.code, level)].add(kept, ratings)
                    child = self._child_of(member, child_codes)
                    if child is not None:
                        figures[(child, level)].add(kept, ratings)
        return figures

    def _child_of(self, member: UnitRef, child_codes: set[str]) -> str | None:
        return next(
            (a.code for a in self.registry.ancestors(member.code) if a.code in child_codes), None
        )

    async def unit_records(
        self, *, campaign: Campaign, units: list[UnitRef], period: str, level: Level
    ) -> dict[str, UnitRecords]:
        days = period_days(campaign, period, self.clock())
        today = self.today()
        cadence = self._cadence(campaign, level)
        satisfied = campaign.work_records.satisfied_ratings
        stored: dict[str, StoredIndicators] = {}
        async with self.db.connection() as connection:
            repository = IndicatorRepository(connection)
            for start in range(0, len(units), CHUNK):
                codes = [u.code for u in units[start : start + CHUNK]]
                stored |= await repository.indicators_among(period, codes)
        records = {}
        for unit in units:
            indicators = stored.get(unit.code)
            held = indicators.meetings_held if indicators else ()
            rate = indicators.all_ratings().rate(satisfied) if indicators else None
            records[unit.code] = UnitRecords(
                cadence_of(held, cadence=cadence, first=days[0], last=days[1], today=today), rate
            )
        return records

    async def warnings(
        self, *, root: UnitRef, since: str | None, limit: int, kind: WarningKind | None
    ) -> WarningPageOut:
        after = cursors.decode_seq(WARNING_CURSOR, since, field="since") if since else 0
        async with self.db.session() as session:
            repository = await WarningRepository.from_session(session)
            rows = await repository.warning_changes_after(
                root_code=root.code,
                root_level=root.level,
                after=after,
                limit=limit,
                kind=kind.value if kind else None,
            )
        last = rows[-1].seq if rows else after
        return WarningPageOut(
            items=[
                WarningOut(
                    warning_id=r.warning_id,
                    kind=WarningKind(r.kind),
                    unit_code=r.unit_code,
                    raised_at=r.raised_at,
                    cleared_at=r.cleared_at,
                    event_ids=list(r.event_ids),
                    detail=r.detail,
                    version=r.version,
                )
                for r in rows
            ],
            next_cursor=cursors.encode(WARNING_CURSOR, str(last)),
        )
