"""The 趋势 page's figures, read with the signed-in user's key: the share of three-no townships
and villages in every campaign period that has begun, for the unit and for each of its
children, against the campaign's targets; and the warnings and overdue cases raised under the
unit in each of the last twelve ISO weeks, by child unit. The rolling period is left out: it
overlaps the current year and would plot the same months twice."""

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from services.console import labels
from services.console.charts import GridChart, LineChart, Point, Series, Target, Tick
from services.console.clients.reporting import EarlyWarning, LevelFigures, Summary
from services.console.pages import period_label
from services.console.service import ConsoleService
from services.console.sessions import Session
from shared.campaign import SHANGHAI, Period
from shared.levels import Level
from shared.registry.cache import UnitRef

TREND_LEVELS = (Level.township, Level.village)
WEEKS = 12
OVERDUE = "case_overdue"
CASE_CLOCKS = frozenset({"case_due_soon", OVERDUE})

Figures = dict[Level, LevelFigures]


@dataclass(frozen=True)
class TrendsPage:
    # The unit's own first, then each child's with the child if it has children to drill to.
    shares: list[tuple[LineChart, UnitRef | None]]
    warnings: GridChart
    overdue: GridChart
    complete: bool  # the warnings feed was read to its end


class Trending:
    def __init__(self, console: ConsoleService) -> None:
        self.console = console

    async def page(self, session: Session, *, root: str) -> TrendsPage:
        periods = self.begun_periods()
        reporting = self.console.clients.reporting
        summaries, (warnings, complete) = await asyncio.gather(
            asyncio.gather(*(reporting.summary(session, root=root, period=p.id) for p in periods)),
            self.console.feeds.warnings(session, root=root),
        )
        unit = self.console.unit(root)
        rows, weeks = self.rows(unit), weeks_ending(self.console.today())

        def grid(chart_id: str, what: str, counted: list[EarlyWarning]) -> GridChart:
            counts = self.by_row_and_week(counted, root)
            return grid_chart(chart_id, what=what, unit=unit, rows=rows, weeks=weeks, counts=counts)

        return TrendsPage(
            shares=self.share_charts(unit, periods, list(summaries)),
            warnings=grid("warnings", "预警", [w for w in warnings if w.kind not in CASE_CLOCKS]),
            overdue=grid("overdue", "超期信访事项", [w for w in warnings if w.kind == OVERDUE]),
            complete=complete,
        )

    def begun_periods(self) -> list[Period]:
        today = self.console.today()
        return sorted(
            (p for p in self.console.campaign.get().periods if p.start <= today),
            key=lambda p: p.start,
        )

    def share_charts(
        self, unit: UnitRef, periods: list[Period], summaries: list[Summary]
    ) -> list[tuple[LineChart, UnitRef | None]]:
        targets = self.console.campaign.get().targets
        ticks = tuple(Tick(p.id, p.id, period_label(p.id)) for p in periods)
        own = share_chart(
            "share-root",
            name=unit.name,
            ticks=ticks,
            figures=[s.levels for s in summaries],
            targets=targets,
        )
        charts: list[tuple[LineChart, UnitRef | None]] = [(own, None)] if own else []
        for child in summaries[-1].children if summaries else []:
            code = child.unit.code
            figures = [_child_figures(s, code) for s in summaries]
            chart = share_chart(
                f"share-{code}", name=child.unit.name, ticks=ticks, figures=figures, targets=targets
            )
            if chart:
                drill = (
                    self.console.registry.get_cached(code)
                    if child.unit.level != Level.village
                    else None
                )
                charts.append((chart, drill))
        return charts

    def rows(self, unit: UnitRef) -> list[UnitRef]:
        """The unit itself, then its children in code order."""
        registry = self.console.registry
        children = (registry.get_cached(c) for c in sorted(registry.children(unit.code)))
        return [unit, *(c for c in children if c is not None)]

    def by_row_and_week(self, warnings: list[EarlyWarning], root: str) -> Counter[tuple[str, str]]:
        """Warnings raised, by the row their unit falls in (the root, or the child holding it)
        and the ISO week they were raised in."""
        counts: Counter[tuple[str, str]] = Counter()
        for warning in warnings:
            row = self.row_of(warning.unit_code, root)
            if row is not None:
                counts[row, week_key(warning.raised_at.astimezone(SHANGHAI).date())] += 1
        return counts

    def row_of(self, code: str, root: str) -> str | None:
        if code == root:
            return root
        chain = self.console.registry.ancestors(code)
        return next((u.code for u in chain if u.parent_code == root), None)


def _child_figures(summary: Summary, code: str) -> Figures:
    return next((c.levels for c in summary.children if c.unit.code == code), {})


def share_chart(
    chart_id: str,
    *,
    name: str,
    ticks: tuple[Tick, ...],
    figures: list[Figures],
    targets: dict[Level, float],
) -> LineChart | None:
    """A unit's shares over the periods, one series per level it has units of (None: it has
    none). A target is drawn for a level the unit holds more than one unit of: for a single
    unit the share is only ever 0 or 100%."""
    levels = [lvl for lvl in TREND_LEVELS if any(_total(f, lvl) for f in figures)]
    if not levels:
        return None
    series = tuple(
        Series(
            lvl.value, f"{labels.LEVEL_TITLES[lvl]}占比", tuple(_point(f.get(lvl)) for f in figures)
        )
        for lvl in levels
    )
    shown = tuple(
        Target(
            lvl.value, f"{labels.level_name(lvl)}目标 {labels.percent(targets[lvl])}", targets[lvl]
        )
        for lvl in levels
        if lvl in targets and max(_total(f, lvl) for f in figures) > 1
    )
    titles = "、".join(labels.LEVEL_TITLES[lvl] for lvl in levels)
    return LineChart(
        chart_id=chart_id,
        title=f"{name}：{titles}占比",
        description=_share_description(name, ticks, series, shown),
        x_title="考核期",
        y_title="占比",
        ticks=ticks,
        series=series,
        targets=shown,
    )


def _total(figures: Figures, level: Level) -> int:
    found = figures.get(level)
    return found.total if found else 0


def _point(figures: LevelFigures | None) -> Point:
    if figures is None or not figures.total or figures.ratio is None:
        return Point(None, "—")
    text = f"{labels.percent(figures.ratio)}（{figures.three_no}/{figures.total}）"
    return Point(figures.ratio, text)


def _share_description(
    name: str, ticks: tuple[Tick, ...], series: tuple[Series, ...], targets: tuple[Target, ...]
) -> str:
    """What a screen reader says of the chart: what it plots and where it ends."""
    said = [
        f"{name}各考核期的{'、'.join(s.label for s in series)}折线图，横轴为考核期，纵轴为占比。"
    ]
    if targets:
        said.append("点线为目标：" + "，".join(t.label for t in targets) + "。")
    if ticks:
        last = "，".join(f"{s.label}{s.points[-1].text}" for s in series)
        said.append(f"最近一期（{ticks[-1].full}）：{last}。")
    return "".join(said)


def weeks_ending(today: date, count: int = WEEKS) -> list[date]:
    """The Mondays of the last `count` ISO weeks, this one last."""
    monday = today - timedelta(days=today.weekday())
    return [monday - timedelta(weeks=back) for back in range(count - 1, -1, -1)]


def week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_tick(monday: date) -> Tick:
    year, week, _ = monday.isocalendar()
    return Tick(week_key(monday), f"{week}周", f"{year}年第{week}周（{monday:%m-%d}起）")


def grid_chart(
    chart_id: str,
    *,
    what: str,
    unit: UnitRef,
    rows: list[UnitRef],
    weeks: list[date],
    counts: Counter[tuple[str, str]],
) -> GridChart:
    columns = tuple(week_tick(w) for w in weeks)
    row_ticks = tuple(
        Tick(r.code, "本级", f"{r.name}（本级）") if r.code == unit.code else Tick(r.code, r.name)
        for r in rows
    )
    grid = tuple(tuple(counts[r.key, c.key] for c in columns) for r in row_ticks)
    total = sum(map(sum, grid))
    description = (
        f"{unit.name}及下级单位近{len(columns)}周每周新发{what}数：每行一个单位，每列一周，"
        f"格中数字为条数，空格为0。合计{total}条。"
    )
    if total:
        busiest = max(zip(row_ticks, grid, strict=True), key=lambda pair: sum(pair[1]))
        description += f"最多的是{busiest[0].full}（{sum(busiest[1])}条）。"
    return GridChart(
        chart_id=chart_id,
        title=f"{unit.name}：近{len(columns)}周{what}（按单位、按周）",
        description=description,
        row_title="单位",
        column_title="周（ISO周次）",
        rows=row_ticks,
        columns=columns,
        counts=grid,
    )
