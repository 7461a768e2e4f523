"""Summaries against the campaign's targets: per campaign level under a root (or the nation),
and the same per direct child. Totals come from the registry; the read model only knows the
units that are not three-no, so a unit without any status counts as three-no."""

from fractions import Fraction
from typing import Any

import asyncpg

from services.reporting.readmodel import CountKey, Figures
from services.reporting.record_reads import RecordReads, WorkFigures
from services.reporting.repository import CountRepository, FeedRepository, WarningRepository
from services.reporting.schemas import (
    ChildSummaryOut,
    LevelFigures,
    SummaryOut,
    counts_out,
    unit_out,
)
from services.reporting.tree import UnitTree
from shared.campaign import Campaign, CurrentCampaign
from shared.db import Database
from shared.levels import CAMPAIGN_LEVELS, RANK, Level
from shared.registry.cache import UnitRef, UnitRegistry

WorkKey = tuple[str, Level]  # (unit code, level)


def levels_under(level: Level) -> list[Level]:
    """The campaign levels at or below a level, highest first."""
    return [lvl for lvl in CAMPAIGN_LEVELS if RANK[lvl] <= RANK[level]]


def target_met(three_no: int, total: int, target: Fraction | None) -> bool | None:
    if target is None or total == 0:
        return None
    # In integers: 8 of 20 meets 0.4 exactly, where floats might fall a hair short.
    return three_no * target.denominator >= target.numerator * total


class Summaries:
    """Reads the counts, the last change and the open warnings on a pooled connection, and
    the work-record figures through `records` (a connection of its own, taken after the first
    is given back)."""

    def __init__(
        self,
        *,
        db: Database,
        registry: UnitRegistry,
        tree: UnitTree,
        records: RecordReads,
        campaign: CurrentCampaign,
    ) -> None:
        self.db = db
        self.registry = registry
        self.tree = tree
        self.records = records
        self._campaign = campaign
        self._targets = {level: Fraction(str(t)) for level, t in campaign.get().targets.items()}

    @property
    def campaign(self) -> Campaign:
        return self._campaign.get()

    async def of_unit(self, unit: UnitRef, period: str) -> SummaryOut:
        root = unit.code
        children = self._units(self.registry.children(root))
        async with self.db.connection() as connection:
            counts = await CountRepository(connection).counts(
                period, [root, *(c.code for c in children)]
            )
            latest = await self._latest(connection, unit)
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
            levels=self._levels(unit, period=period, counts=counts, work=work),
            children=[
                ChildSummaryOut(
                    unit=unit_out(c),
                    levels=self._levels(c, period=period, counts=counts, work=work),
                )
                for c in children
            ],
            **latest,
        )

    async def of_nation(self, period: str) -> SummaryOut:
        """Every province as a child; the nation's figures are the sums of theirs."""
        provinces = self._units(self.registry.roots())
        async with self.db.connection() as connection:
            counts = await CountRepository(connection).counts(period, [p.code for p in provinces])
            latest = await self._latest(connection, None)
        work: dict[WorkKey, WorkFigures] = {}
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
            levels[level] = self._figures(total, level=level, figures=figures, work=whole)
        return SummaryOut(
            root=None,
            period=period,
            levels=levels,
            children=[
                ChildSummaryOut(
                    unit=unit_out(p),
                    levels=self._levels(p, period=period, counts=counts, work=work),
                )
                for p in provinces
            ],
            **latest,
        )

    async def _latest(self, connection: asyncpg.Connection, root: UnitRef | None) -> dict[str, Any]:
        """The open warnings under the root (None: the nation) and its last status change."""
        code, level = (root.code, root.level) if root else (None, None)
        return {
            "open_warnings": await WarningRepository(connection).open_warnings(code, level),
            "last_changed_at": await FeedRepository(connection).last_change(code, level),
        }

    def _units(self, codes: list[str]) -> list[UnitRef]:
        return sorted((u for u in map(self.registry.get_cached, codes) if u), key=lambda u: u.code)

    def _levels(
        self,
        unit: UnitRef,
        *,
        period: str,
        counts: dict[CountKey, Figures],
        work: dict[WorkKey, WorkFigures],
    ) -> dict[Level, LevelFigures]:
        return {
            level: self._figures(
                self.tree.total(unit.code, level),
                level=level,
                figures=counts.get((unit.code, period, level)),
                work=work.get((unit.code, level), WorkFigures()),
            )
            for level in levels_under(unit.level)
        }

    def _figures(
        self, total: int, *, level: Level, figures: Figures | None, work: WorkFigures
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
