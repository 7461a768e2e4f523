"""Reading the read model: unit status, summaries against the targets, eligible units, the feed,
work-record indicators and the warnings feed.

Every read checks, in this order: the unit exists (404), the key may read it (403), the period
exists (404). Totals come from the registry; the read model only knows the units that are not
three-no, so a unit without any status counts as three-no.
"""

import asyncio
from bisect import bisect_right
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fractions import Fraction
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.reporting.cache import (
    ExportCache,
    Rendered,
    RenderedCache,
    Stamp,
    StatusCache,
    StatusKey,
    export_builds_total,
)
from services.reporting.readmodel import ZERO, CountKey, Figures, StoredStatus, criterion_counts
from services.reporting.record_reads import RecordReads, UnitRecords, WorkFigures
from services.reporting.records_repository import RecordsRepository
from services.reporting.repository import (
    ReportingRepository,
)
from services.reporting.schemas import (
    ChildSummaryOut,
    CountsOut,
    EligiblePageOut,
    FeedItemOut,
    FeedPageOut,
    IndicatorsOut,
    LevelFigures,
    SummaryOut,
    UnitOut,
    UnitStatusOut,
    WarningPageOut,
)
from services.reporting.tree import UnitTree
from shared import cursors
from shared.access.service import Principal
from shared.campaign import SHANGHAI, Campaign, CurrentCampaign, Period, system_now
from shared.db import Database
from shared.early_warning import WarningKind
from shared.errors import InvalidInput, PeriodNotFound, UnitNotFound
from shared.levels import CAMPAIGN_LEVELS, RANK, Level
from shared.registry.cache import UnitRef, UnitRegistry

FEED_CURSOR = "f1"
ELIGIBLE_CURSOR = "e1"
SCAN_CHUNK = 500
# The rendered cache's keys: a summary's (SUMMARY, root or NATION, period), an eligible
# page's (ELIGIBLE_PAGE, root, period, level, cursor, limit).
SUMMARY = "summary"
NATION = ""  # a national key's summary without a root
ELIGIBLE_PAGE = "eligible"


def unit_out(unit: UnitRef) -> UnitOut:
    return UnitOut(code=unit.code, name=unit.name, level=unit.level, parent_code=unit.parent_code)


def counts_out(counts: tuple[int, ...]) -> CountsOut:
    return CountsOut(**criterion_counts(counts))


def _chunks(members: list[UnitRef]) -> list[list[UnitRef]]:
    return [members[i : i + SCAN_CHUNK] for i in range(0, len(members), SCAN_CHUNK)]


def _codes(units: list[UnitRef]) -> list[str]:
    return [unit.code for unit in units]


def levels_under(level: Level) -> list[Level]:
    """The campaign levels at or below a level, highest first."""
    return [lvl for lvl in CAMPAIGN_LEVELS if RANK[lvl] <= RANK[level]]


def target_met(three_no: int, total: int, target: Fraction | None) -> bool | None:
    if target is None or total == 0:
        return None
    # In integers: 8 of 20 meets 0.4 exactly, where floats might fall a hair short.
    return three_no * target.denominator >= target.numerator * total


@dataclass(frozen=True, slots=True)
class Eligibility:
    """The whole answer for one root, period and level, as the exports present it."""

    root: UnitRef
    period: Period | None  # None: rolling
    period_id: str
    level: Level
    as_of: datetime
    eligible: list[UnitRef]
    not_eligible: list[tuple[UnitRef, StoredStatus]]
    records: dict[str, UnitRecords] = field(default_factory=dict)  # cadence, satisfaction


class ReportingService:
    def __init__(
        self,
        *,
        db: Database,
        registry: UnitRegistry,
        campaign: CurrentCampaign,
        clock: Callable[[], datetime] = system_now,
    ) -> None:
        """Each read opens a session only when it needs the database (a summary served from
        the cache needs none). `clock` is the time cadences are worked out at."""
        self.db = db
        self.registry = registry
        self._campaign = campaign
        self.clock = clock
        self.tree = UnitTree(registry)
        self.cache = RenderedCache()
        self.statuses = StatusCache()
        self.exports = ExportCache()
        self.records = RecordReads(db=db, registry=registry, tree=self.tree, clock=clock)
        self._cached_day: date | None = None
        self._targets = {level: Fraction(str(t)) for level, t in campaign.get().targets.items()}

    @property
    def campaign(self) -> Campaign:
        """The campaign as of now: a new calendar-year period is there when its year begins."""
        return self._campaign.get()

    def _stamp(self) -> Stamp | None:
        """The cache stamp; summaries and files show cadences as of a day, so a new day (in
        Shanghai) starts a new cache generation."""
        today = self.clock().astimezone(SHANGHAI).date()
        if today != self._cached_day:
            self._cached_day = today
            self.cache.new_generation()
        return self.cache.stamp(self.registry.version)

    async def readable_unit(self, principal: Principal, code: str, period: str | None) -> UnitRef:
        unit = await self.registry.get(code)
        if unit is None:
            raise UnitNotFound(f"no unit {code} in the registry")
        principal.require_reader_for(self.registry, code)
        if period is not None:
            self._require_period(period)
        return unit

    def _require_period(self, period: str) -> None:
        if not self.campaign.is_period(period):
            known = ", ".join(self.campaign.period_ids())
            raise PeriodNotFound(f"no period {period!r}; the campaign has {known}")

    # --- status ---------------------------------------------------------------------------

    def changed(self, statuses: Collection[StatusKey] | None) -> None:
        """This instance changed the read model (and these statuses; None: any): what it keeps
        is forgotten now, before the notification reaches the others."""
        self.cache.new_generation()
        if statuses is None or statuses:
            self.statuses.forget(statuses)

    async def status(self, *, principal: Principal, code: str, period: str) -> Rendered:
        unit = await self.readable_unit(principal, code, period)
        if unit.level not in CAMPAIGN_LEVELS:
            raise InvalidInput(
                f"unit {code} is a {unit.level}; statuses are kept for counties, townships and "
                "villages",
                errors=[{"field": "code", "message": "not a campaign level", "type": "unit_level"}],
            )
        key, version = (code, period), self.registry.version
        if (kept := self.statuses.get(key, version)) is not None:
            return kept
        stamp = self.statuses.stamp()
        rendered = Rendered.of(await self._read_status(unit, period))
        self.statuses.put(key, stamp, version, rendered)
        return rendered

    async def _read_status(self, unit: UnitRef, period: str) -> UnitStatusOut:
        code = unit.code
        async with self.db.connection() as connection:
            stored = await ReportingRepository(connection).status(code, period)
        if stored is None:
            return UnitStatusOut(
                unit=unit_out(unit),
                period=period,
                three_no=True,
                counts=counts_out(ZERO),
                people=counts_out(ZERO),
                counting_event_ids=[],
                changed_at=None,
                version=0,
            )
        return UnitStatusOut(
            unit=unit_out(unit),
            period=period,
            three_no=stored.three_no,
            counts=counts_out(stored.batches),
            people=counts_out(stored.people),
            counting_event_ids=list(stored.counting_event_ids),
            changed_at=stored.changed_at,
            version=stored.version,
        )

    # --- summary --------------------------------------------------------------------------

    async def summary(self, *, principal: Principal, root: str | None, period: str) -> Rendered:
        """The summary of `root`; without one, of the key's scope (for a national key, the
        nation: every province as a child)."""
        root = root or principal.scope_code
        if root is None:
            self._require_period(period)
        else:
            unit = await self.readable_unit(principal, root, period)

        async def render() -> Rendered:
            async with self.db.session() as session:
                if root is None:
                    return Rendered.of(await self._national_summary(session, period))
                return Rendered.of(await self._summary(session, unit, period))

        key = (SUMMARY, root or NATION, period)
        return await self.cache.get_or_render(key, self._stamp(), render)

    async def _summary(self, session: AsyncSession, unit: UnitRef, period: str) -> SummaryOut:
        root = unit.code
        children = self._units(self.registry.children(root))
        repository = await ReportingRepository.from_session(session)
        counts = await repository.counts(period, [root, *(c.code for c in children)])
        work = await self.records.summary_figures(
            campaign=self.campaign,
            root=unit,
            children=children,
            period=period,
            levels=levels_under(unit.level),
        )
        return SummaryOut(
            root=unit_out(unit),
            period=period,
            levels=self._levels(unit, period, counts, work),
            children=[
                ChildSummaryOut(unit=unit_out(c), levels=self._levels(c, period, counts, work))
                for c in children
            ],
            **await self._latest(session, unit),
        )

    async def _national_summary(self, session: AsyncSession, period: str) -> SummaryOut:
        """Every province as a child; the nation's figures are the sums of theirs."""
        provinces = self._units(self.registry.roots())
        repository = await ReportingRepository.from_session(session)
        counts = await repository.counts(period, [p.code for p in provinces])
        work: dict[tuple[str, Level], WorkFigures] = {}
        for province in provinces:
            work |= await self.records.summary_figures(
                campaign=self.campaign,
                root=province,
                children=[],
                period=period,
                levels=levels_under(province.level),
            )
        levels = {}
        for level in CAMPAIGN_LEVELS:
            figures, whole = Figures(), WorkFigures()
            for province in provinces:
                figures += counts.get((province.code, period, level)) or Figures()
                whole += work.get((province.code, level), WorkFigures())
            total = sum(self.tree.total(p.code, level) for p in provinces)
            levels[level] = self._figures(total, level, figures, whole)
        return SummaryOut(
            root=None,
            period=period,
            levels=levels,
            children=[
                ChildSummaryOut(unit=unit_out(p), levels=self._levels(p, period, counts, work))
                for p in provinces
            ],
            **await self._latest(session, None),
        )

    async def _latest(self, session: AsyncSession, root: UnitRef | None) -> dict[str, Any]:
        """The open warnings under the root (None: the nation) and its last status change."""
        code, level = (root.code, root.level) if root else (None, None)
        records = await RecordsRepository.from_session(session)
        repository = await ReportingRepository.from_session(session)
        return {
            "open_warnings": await records.open_warnings(code, level),
            "last_changed_at": await repository.last_change(code, level),
        }

    def _units(self, codes: list[str]) -> list[UnitRef]:
        return sorted((u for u in map(self.registry.get_cached, codes) if u), key=lambda u: u.code)

    def _levels(
        self,
        unit: UnitRef,
        period: str,
        counts: dict[CountKey, Figures],
        work: dict[tuple[str, Level], WorkFigures],
    ) -> dict[Level, LevelFigures]:
        return {
            level: self._figures(
                self.tree.total(unit.code, level),
                level,
                counts.get((unit.code, period, level)),
                work.get((unit.code, level), WorkFigures()),
            )
            for level in levels_under(unit.level)
        }

    def _figures(
        self, total: int, level: Level, figures: Figures | None, work: WorkFigures
    ) -> LevelFigures:
        figures = figures or Figures()
        three_no = max(total - figures.not_clean, 0)
        return LevelFigures(
            total=total,
            three_no=three_no,
            ratio=three_no / total if total else None,
            target=self.campaign.target(level),
            target_met=target_met(three_no, total, self._targets.get(level)),
            batches=counts_out(figures.batches),
            people=counts_out(figures.people),
            cadence_kept=work.cadence_kept,
            ratings=work.ratings.total,
            satisfaction_rate=work.ratings.rate(self.campaign.work_records.satisfied_ratings),
        )

    # --- eligible -------------------------------------------------------------------------

    async def eligible_page(
        self,
        *,
        principal: Principal,
        root: str,
        period: str,
        level: Level,
        cursor: str | None,
        limit: int,
    ) -> Rendered:
        """A page of `EligiblePageOut`, rendered once per cache stamp like a summary."""
        await self.readable_unit(principal, root, period)
        after = cursors.decode(ELIGIBLE_CURSOR, cursor, field="cursor") if cursor else None

        async def render() -> Rendered:
            members = self.tree.members(root, level)
            start = 0 if after is None else bisect_right(members, after, key=lambda u: u.code)
            return Rendered.of(await self._eligible_page(members[start:], period, limit))

        key = (ELIGIBLE_PAGE, root, period, level.value, cursor or "", str(limit))
        return await self.cache.get_or_render(key, self._stamp(), render)

    async def _eligible_page(
        self, members: list[UnitRef], period: str, limit: int
    ) -> EligiblePageOut:
        found: list[UnitRef] = []
        async with self.db.connection() as connection:
            repository = ReportingRepository(connection)
            for chunk in _chunks(members):
                not_clean = await repository.not_clean_codes(period, _codes(chunk))
                found += (unit for unit in chunk if unit.code not in not_clean)
                if len(found) > limit:
                    break
        more = len(found) > limit
        page = found[:limit]
        return EligiblePageOut(
            items=[unit_out(u) for u in page],
            next_cursor=cursors.encode(ELIGIBLE_CURSOR, page[-1].code) if more else None,
        )

    async def eligibility(
        self,
        *,
        principal: Principal,
        root: str,
        period: str,
        level: Level,
    ) -> Eligibility:
        unit = await self.readable_unit(principal, root, period)
        return await self._eligibility(unit, period, level)

    async def export(
        self,
        *,
        principal: Principal,
        root: str,
        period: str,
        level: Level,
        file_format: str,
        render: Callable[[Eligibility], bytes],
    ) -> bytes:
        """The whole eligible list as a file, rendered by `render` (in a worker thread). A
        file is built once per read-model version and kept (ExportCache); the key is checked
        on every call."""
        # Taken first: a file must never be kept under a newer stamp than what it was built from.
        stamp = self._stamp()
        unit = await self.readable_unit(principal, root, period)

        async def build() -> bytes:
            export_builds_total.labels(file_format).inc()
            report = await self._eligibility(unit, period, level)
            return await asyncio.to_thread(render, report)

        key = (root, period, level.value, file_format)
        return await self.exports.get_or_build(key, stamp, build)

    async def _eligibility(self, unit: UnitRef, period: str, level: Level) -> Eligibility:
        root = unit.code
        eligible: list[UnitRef] = []
        not_eligible: list[tuple[UnitRef, StoredStatus]] = []
        members = self.tree.members(root, level)
        async with self.db.connection() as connection:
            repository = ReportingRepository(connection)
            for chunk in _chunks(members):
                not_clean = await repository.not_clean(period, _codes(chunk))
                for member in chunk:
                    status = not_clean.get(member.code)
                    if status is None:
                        eligible.append(member)
                    else:
                        not_eligible.append((member, status))
        records = await self.records.unit_records(
            campaign=self.campaign, units=members, period=period, level=level
        )
        return Eligibility(
            root=unit,
            period=self.campaign.period(period),
            period_id=period,
            level=level,
            as_of=datetime.now(UTC),
            eligible=eligible,
            not_eligible=not_eligible,
            records=records,
        )

    # --- feed -----------------------------------------------------------------------------

    async def feed(
        self,
        *,
        principal: Principal,
        root: str,
        since: str | None,
        limit: int,
    ) -> FeedPageOut:
        unit = await self.readable_unit(principal, root, None)
        after = self._feed_position(since) if since else 0
        async with self.db.session() as session:
            repository = await ReportingRepository.from_session(session)
            rows = await repository.changes_after(
                root_code=root, root_level=unit.level, after=after, limit=limit
            )
        last = rows[-1].seq if rows else after
        return FeedPageOut(
            items=[
                FeedItemOut(
                    unit_code=r.unit_code,
                    period=r.period,
                    three_no=r.three_no,
                    version=r.version,
                    changed_at=r.changed_at,
                )
                for r in rows
            ],
            next_cursor=cursors.encode(FEED_CURSOR, str(last)),
        )

    @staticmethod
    def _feed_position(since: str) -> int:
        return cursors.decode_seq(FEED_CURSOR, since, field="since")

    # --- work records and warnings ----------------------------------------------------------

    async def indicators(self, *, principal: Principal, code: str, period: str) -> IndicatorsOut:
        unit = await self.readable_unit(principal, code, period)
        if unit.level not in CAMPAIGN_LEVELS:
            raise InvalidInput(
                f"unit {code} is a {unit.level}; work records are kept for counties, townships "
                "and villages",
                errors=[{"field": "code", "message": "not a campaign level", "type": "unit_level"}],
            )
        return await self.records.indicators(
            campaign=self.campaign, unit=unit, unit_out=unit_out(unit), period=period
        )

    async def warnings(
        self,
        *,
        principal: Principal,
        root: str,
        since: str | None,
        limit: int,
        kind: WarningKind | None,
    ) -> WarningPageOut:
        unit = await self.readable_unit(principal, root, None)
        return await self.records.warnings(root=unit, since=since, limit=limit, kind=kind)
