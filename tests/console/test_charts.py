"""The console's charts without a stack: what each SVG draws is what its table lists, series
differ by more than colour, and the figures of the 趋势 page are gathered as the charts need."""

from collections import Counter
from datetime import date
from xml.etree import ElementTree

from services.console.charts import GridChart, LineChart, Point, Series, Target, Tick, shade_of
from services.console.clients.reporting import LevelFigures
from services.console.trending import grid_chart, share_chart, week_key, weeks_ending
from shared.levels import Level
from shared.registry.cache import UnitRef

SVG = "{http://www.w3.org/2000/svg}"
TICKS = (Tick("2024", "2024", "2024年度考核期"), Tick("2025", "2025"), Tick("2026", "2026"))


def figures(three_no: int, total: int) -> LevelFigures:
    return LevelFigures(
        total=total, three_no=three_no, ratio=three_no / total, target=None, target_met=None
    )


def two_series() -> LineChart:
    return LineChart(
        chart_id="c",
        title="枞阳镇：三无乡镇、三无村（居）占比",
        description="描述",
        x_title="考核期",
        y_title="占比",
        ticks=TICKS,
        series=(
            Series("township", "三无乡镇占比", (Point(1.0, "100%"),) * 3),
            Series(
                "village",
                "三无村（居）占比",
                (Point(0.5, "50%"), Point(None, "—"), Point(0.25, "25%")),
            ),
        ),
        targets=(Target("village", "村（居）目标 50.0%", 0.5),),
    )


def drawn(chart: LineChart | GridChart) -> ElementTree.Element:
    return ElementTree.fromstring(str(chart.svg()))


def points_of(svg: ElementTree.Element, tag: str = "point") -> set[tuple[str, str, str]]:
    return {
        (g.get("data-series", ""), g.get("data-x", ""), g.get("data-value", ""))
        for g in svg.iter(f"{SVG}g")
        if g.get("class") == tag
    }


def cells_of(chart: LineChart | GridChart) -> set[tuple[str, str, str]]:
    return {(c.series, c.x, c.value) for row in chart.table().rows for c in row.cells if c.value}


def test_a_line_chart_draws_a_point_per_value_and_its_table_lists_the_same() -> None:
    chart = two_series()
    svg = drawn(chart)
    assert points_of(svg) == cells_of(chart)
    assert points_of(svg) == {
        ("township", "2024", "1"),
        ("township", "2025", "1"),
        ("township", "2026", "1"),
        ("village", "2024", "0.5"),
        ("village", "2026", "0.25"),
    }
    rows = chart.table().rows
    assert [row.header for row in rows] == ["2024年度考核期", "2025", "2026"]
    assert [c.text for c in rows[1].cells] == ["100%", "—"]


def test_a_missing_value_breaks_the_line_rather_than_bridging_it() -> None:
    lines = [p for p in drawn(two_series()).iter(f"{SVG}polyline")]
    # The township's one line of three points, the village's two lines of one point each.
    assert sorted(len(line.get("points", "").split()) for line in lines) == [1, 1, 3]


def test_series_differ_by_dash_and_marker_not_only_by_colour() -> None:
    svg = drawn(two_series())
    dashes = {line.get("stroke-dasharray") for line in svg.iter(f"{SVG}polyline")}
    assert dashes == {None, "8 4"}
    markers = {
        g.get("data-series"): next(child.tag for child in g if child.tag != f"{SVG}title")
        for g in svg.iter(f"{SVG}g")
    }
    assert markers == {"township": f"{SVG}circle", "village": f"{SVG}rect"}


def test_the_chart_is_an_image_named_by_its_title_and_description() -> None:
    svg = drawn(two_series())
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "c-title c-desc"
    title, description = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None and title.text == "枞阳镇：三无乡镇、三无村（居）占比"
    assert description is not None and description.text == "描述"


def test_the_target_is_a_labelled_line_at_its_share() -> None:
    svg = drawn(two_series())
    (target,) = [line for line in svg.iter(f"{SVG}line") if line.get("class") == "target"]
    # The plot runs from y=44 (100%) to y=244 (0%): 50% is half way.
    assert target.get("y1") == target.get("y2") == "144"
    assert "村（居）目标 50.0%" in [t.text for t in svg.iter(f"{SVG}text")]


def test_names_are_escaped_in_the_svg() -> None:
    chart = two_series()
    hostile = LineChart(**{**chart.__dict__, "title": '<script>alert("x")</script>'})
    assert "<script>" not in str(hostile.svg())
    title = drawn(hostile).find(f"{SVG}title")
    assert title is not None and title.text == '<script>alert("x")</script>'


def test_a_grid_writes_each_count_in_its_cell_and_its_table_lists_every_cell() -> None:
    chart = GridChart(
        chart_id="g",
        title="预警",
        description="描述",
        row_title="单位",
        column_title="周",
        rows=(Tick("a", "甲"), Tick("b", "乙")),
        columns=(Tick("w1", "1周"), Tick("w2", "2周")),
        counts=((0, 3), (1, 0)),
    )
    svg = drawn(chart)
    assert points_of(svg, "cell") == cells_of(chart)
    assert ("a", "w2", "3") in points_of(svg, "cell")
    figures = sorted(t.text or "" for g in svg.iter(f"{SVG}g") for t in g.iter(f"{SVG}text"))
    assert figures == ["1", "3"]  # an empty cell is a zero, and says so in the description
    assert [[c.text for c in row.cells] for row in chart.table().rows] == [["0", "3"], ["1", "0"]]


def test_more_is_darker() -> None:
    fills = [shade_of(n)[0] for n in (0, 1, 2, 3, 5, 9)]
    assert fills == ["#ffffff", "#fee2e2", "#fecaca", "#f87171", "#b91c1c", "#b91c1c"]
    assert shade_of(5)[1] == "#ffffff"  # a light figure on the darkest shade


# --- what the 趋势 page draws ---------------------------------------------------------------


def test_a_unit_gets_a_series_per_level_it_has_units_of_and_targets_for_shares() -> None:
    periods = [
        {Level.township: figures(1, 1), Level.village: figures(14, 15)},
        {Level.township: figures(1, 1), Level.village: figures(13, 15)},
        {Level.township: figures(0, 1), Level.village: figures(12, 15)},
    ]
    targets = {Level.county: 1.0, Level.township: 0.4, Level.village: 0.5}
    chart = share_chart("c", name="义津镇", ticks=TICKS, figures=periods, targets=targets)
    assert chart is not None
    assert [s.key for s in chart.series] == ["township", "village"]
    assert [p.text for p in chart.series[1].points] == [
        "93.3%（14/15）",
        "86.7%（13/15）",
        "80.0%（12/15）",
    ]
    # A share of one township is 0 or 100%: no target is drawn for it.
    assert [(t.series, t.value) for t in chart.targets] == [("village", 0.5)]
    assert "最近一期（2026）" in chart.description and "80.0%（12/15）" in chart.description


def test_a_unit_without_townships_or_villages_gets_no_chart() -> None:
    chart = share_chart("c", name="某市", ticks=TICKS, figures=[{}, {}, {}], targets={})
    assert chart is None


def test_the_weeks_are_the_last_twelve_iso_weeks_ending_with_this_one() -> None:
    mondays = weeks_ending(date(2026, 12, 7))  # a Monday, ISO week 50
    assert len(mondays) == 12
    assert mondays[-1] == date(2026, 12, 7) and mondays[0] == date(2026, 9, 21)
    assert week_key(date(2026, 12, 13)) == "2026-W50"
    assert week_key(date(2027, 1, 1)) == "2026-W53"


def test_a_grid_counts_per_unit_and_week_with_the_unit_itself_first() -> None:
    county = UnitRef("340722000000", "枞阳县", Level.county, None)
    township = UnitRef("340722105000", "义津镇", Level.township, county.code)
    mondays = weeks_ending(date(2026, 12, 7), count=2)
    counts = Counter({(township.code, "2026-W50"): 2, (county.code, "2026-W49"): 1})
    chart = grid_chart(
        "w", what="预警", unit=county, rows=[county, township], weeks=mondays, counts=counts
    )
    assert [r.label for r in chart.rows] == ["本级", "义津镇"]
    assert chart.counts == ((1, 0), (0, 2))
    assert [c.full for c in chart.columns] == ["2026年第49周（11-30起）", "2026年第50周（12-07起）"]
    assert "合计3条" in chart.description and "最多的是义津镇（2条）" in chart.description
