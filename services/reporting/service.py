"""Reading the read model: unit status, summaries against the targets, eligible and
not-eligible units with the exports, the feed, work-record indicators and the warnings feed.

Every read checks, in this order: the unit exists (404), the key may read it (403), the period
exists (404). Rendered answers are kept per cache stamp (`cache.py`); the work of each kind of
read is done by its collaborator: `Summaries`, `EligibleLists`, `StatusFeed`, `RecordReads`.
"""

import asyncio
import contextlib
from collections.abc import Callable, Collection, Iterable
from datetime import date, datetime
from uuid import UUID

from services.reporting.cache import (
    ExportCache,
    Rendered,
    RenderedCache,
    Stamp,
    StatusCache,
    StatusKey,
    export_builds_total,
)
from services.reporting.eligibility import (
    ELIGIBLE_CURSOR,
    NOT_ELIGIBLE_CURSOR,
    Eligibility,
    EligibleLists,
)
from services.reporting.feed import StatusFeed
from services.reporting.readmodel import ZERO, StoredStatus
from services.reporting.record_reads import RecordReads
from services.reporting.repository import DisputeRepository, StatusRepository
from services.reporting.schemas import (
    FeedPageOut,
    IndicatorsOut,
    UnitStatusOut,
    WarningPageOut,
    counts_out,
    unit_out,
)
from services.reporting.summaries import Summaries
from services.reporting.tree import UnitTree
from shared import cursors
from shared.access.service import Principal
from shared.campaign import SHANGHAI, Campaign, CurrentCampaign, system_now
from shared.db import Database
from shared.early_warning import WarningKind
from shared.errors import InvalidInput, PeriodNotFound, UnitNotFound
from shared.gathered_reads import GatheredReads
from shared.levels import CAMPAIGN_LEVELS, Level
from shared.registry.cache import UnitRef, UnitRegistry

# The rendered cache's keys: a summary's (SUMMARY, root or NATION, period), a page's
# (ELIGIBLE_PAGE or NOT_ELIGIBLE_PAGE, root, period, level, cursor, limit).
SUMMARY = "summary"
NATION = ""  # a national key's summary without a root
ELIGIBLE_PAGE = "eligible"
NOT_ELIGIBLE_PAGE = "not-eligible"
# Status reads of units no one read since they changed: at most this many statements at once
# (of the pool's connections), each of the keys asked meanwhile.
STATUS_READS_AT_ONCE = 3
STATUSES_PER_READ = 500
# A status as stored (None: no counting event), and event ids with a live dispute among them.
StatusRead = tuple[StoredStatus | None, Collection[UUID]]


class ReportingService:
    def __init__(
        self,
        *,
        db: Database,
        registry: UnitRegistry,
        campaign: CurrentCampaign,
        clock: Callable[[], datetime] = system_now,
    ) -> None:
        """Each read opens a connection only when it needs the database (a summary served
        from the cache needs none). `clock` is the time cadences are worked out at."""
        self.db = db
        self.registry = registry
        self._campaign = campaign
        self.clock = clock
        self.tree = UnitTree(registry)
        self.cache = RenderedCache()
        self.statuses = StatusCache()
        self._status_reads = GatheredReads(
            self._read_statuses, reads=STATUS_READS_AT_ONCE, max_keys=STATUSES_PER_READ
        )
        self.exports = ExportCache()
        self.records = RecordReads(db=db, registry=registry, tree=self.tree, clock=clock)
        self.summaries = Summaries(
            db=db, registry=registry, tree=self.tree, records=self.records, campaign=campaign
        )
        self.lists = EligibleLists(
            db=db, registry=registry, tree=self.tree, records=self.records, campaign=campaign
        )
        self.changes = StatusFeed(db=db)
        self._cached_day: date | None = None

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

    async def readable_unit(
        self, principal: Principal, code: str, *, period: str | None
    ) -> UnitRef:
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

    def changed(self, statuses: Collection[StatusKey] | None) -> None:
        """This instance changed the read model (and these statuses; None: any): what it keeps
        is forgotten now, before the notification reaches the others."""
        self.cache.new_generation()
        if statuses is None or statuses:
            self.statuses.forget(statuses)

    # --- status ---------------------------------------------------------------------------

    async def status(self, *, principal: Principal, code: str, period: str) -> Rendered:
        unit = await self.readable_unit(principal, code, period=period)
        _require_campaign_level(unit, kept="statuses")
        key, version = (code, period), self.registry.version
        if (kept := self.statuses.get(key, version)) is not None:
            return kept
        stamp = self.statuses.stamp()
        stored, live = await self._status_reads.get(key)
        rendered = Rendered.of(status_out(unit, period, stored, live))
        self.statuses.put(key, stamp, version, rendered)
        return rendered

    async def _read_statuses(self, keys: list[StatusKey]) -> dict[StatusKey, StatusRead]:
        """The statuses of these (unit, period) keys, with the counting events that have a live
        dispute, in two statements whatever their number."""
        async with self.db.connection() as connection:
            stored = await StatusRepository(connection).statuses(keys)
            counting = [i for s in stored.values() for i in event_ids_of(s.counting_event_ids)]
            live = await DisputeRepository(connection).live_among(counting) if counting else set()
        return {key: (stored.get(key), live) for key in keys}

    # --- summary --------------------------------------------------------------------------

    async def summary(self, *, principal: Principal, root: str | None, period: str) -> Rendered:
        """The summary of `root`; without one, of the key's scope (for a national key, the
        nation: every province as a child)."""
        root = root or principal.scope_code
        if root is None:
            self._require_period(period)
        else:
            unit = await self.readable_unit(principal, root, period=period)

        async def render() -> Rendered:
            if root is None:
                return Rendered.of(await self.summaries.of_nation(period))
            return Rendered.of(await self.summaries.of_unit(unit, period))

        key = (SUMMARY, root or NATION, period)
        return await self.cache.get_or_render(key, self._stamp(), render)

    # --- eligible and not eligible ----------------------------------------------------------

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
        await self.readable_unit(principal, root, period=period)
        after = cursors.decode(ELIGIBLE_CURSOR, cursor, field="cursor") if cursor else None

        async def render() -> Rendered:
            members = self.lists.members_after(root=root, level=level, after=after)
            return Rendered.of(await self.lists.eligible_page(members, period=period, limit=limit))

        key = (ELIGIBLE_PAGE, root, period, level.value, cursor or "", str(limit))
        return await self.cache.get_or_render(key, self._stamp(), render)

    async def not_eligible_page(
        self,
        *,
        principal: Principal,
        root: str,
        period: str,
        level: Level,
        cursor: str | None,
        limit: int,
    ) -> Rendered:
        """A page of `NotEligiblePageOut`: the units that are not three-no, with their counts
        and counting events, rendered once per cache stamp like an eligible page."""
        await self.readable_unit(principal, root, period=period)
        after = cursors.decode(NOT_ELIGIBLE_CURSOR, cursor, field="cursor") if cursor else None

        async def render() -> Rendered:
            members = self.lists.members_after(root=root, level=level, after=after)
            page = await self.lists.not_eligible_page(members, period=period, limit=limit)
            return Rendered.of(page)

        key = (NOT_ELIGIBLE_PAGE, root, period, level.value, cursor or "", str(limit))
        return await self.cache.get_or_render(key, self._stamp(), render)

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
        unit = await self.readable_unit(principal, root, period=period)

        async def build() -> bytes:
            export_builds_total.labels(file_format).inc()
            report = await self.lists.whole(unit, period=period, level=level)
            return await asyncio.to_thread(render, report)

        key = (root, period, level.value, file_format)
        return await self.exports.get_or_build(key, stamp, build)

    # --- feeds, work records --------------------------------------------------------------

    async def feed(
        self, *, principal: Principal, root: str, since: str | None, limit: int
    ) -> FeedPageOut:
        unit = await self.readable_unit(principal, root, period=None)
        return await self.changes.page(root=unit, since=since, limit=limit)

    async def indicators(self, *, principal: Principal, code: str, period: str) -> IndicatorsOut:
        unit = await self.readable_unit(principal, code, period=period)
        _require_campaign_level(unit, kept="work records")
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
        unit = await self.readable_unit(principal, root, period=None)
        return await self.records.warnings(root=unit, since=since, limit=limit, kind=kind)


def status_out(
    unit: UnitRef, period: str, stored: StoredStatus | None, live: Collection[UUID]
) -> UnitStatusOut:
    """A unit's status as read (none stored: three-no at version 0); `live` holds at least the
    counting events that have a live dispute."""
    counting = event_ids_of(stored.counting_event_ids if stored else ())
    if stored is None:
        return UnitStatusOut(
            unit=unit_out(unit),
            period=period,
            three_no=True,
            counts=counts_out(ZERO),
            people=counts_out(ZERO),
            counting_event_ids=[],
            disputed_event_ids=[],
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
        disputed_event_ids=[event_id for event_id in counting if event_id in live],
        changed_at=stored.changed_at,
        version=stored.version,
    )


def _require_campaign_level(unit: UnitRef, *, kept: str) -> None:
    if unit.level not in CAMPAIGN_LEVELS:
        raise InvalidInput(
            f"unit {unit.code} is a {unit.level}; {kept} are kept for counties, townships and "
            "villages",
            errors=[{"field": "code", "message": "not a campaign level", "type": "unit_level"}],
        )


def event_ids_of(counting_event_ids: Iterable[str]) -> list[UUID]:
    """The counting events' ids as UUIDs, in their order (an id that is none is left out)."""
    ids = []
    for text in counting_event_ids:
        with contextlib.suppress(ValueError):
            ids.append(UUID(text))
    return ids
