"""Charts drawn on the server as SVG, no script: a line chart of shares over the periods against
their targets, and a grid of counts by unit and week. Each chart is one data structure that
draws both its SVG and its table, so the table view holds exactly what the chart shows. Series
differ by marker and dash as well as colour, and every count is written in its cell, so the
charts read without colour."""

from collections.abc import Iterator
from dataclasses import dataclass, replace

from markupsafe import Markup, escape

FONT = 12
# Per series, in order: the colour, the dash of its line (none: solid), the marker's shape.
SERIES_STYLES = (
    ("#1d4ed8", "", "circle"),
    ("#9a3412", "8 4", "square"),
    ("#047857", "2 3", "triangle"),
    ("#6d28d9", "10 3 2 3", "diamond"),
)
TARGET_COLOUR = "#b91c1c"
# A count's shade and the colour of its figure: light shades carry dark figures.
SHADES = ((5, "#b91c1c", "#ffffff"), (3, "#f87171", "#1f2937"), (2, "#fecaca", "#1f2937"))
ONE_SHADE = ("#fee2e2", "#1f2937")


@dataclass(frozen=True)
class Tick:
    """A place on the x axis (a period, a week) or a row of a grid (a unit)."""

    key: str
    label: str  # on the chart
    long_label: str = ""  # in the table and the points' titles; the label when empty

    @property
    def full(self) -> str:
        return self.long_label or self.label


@dataclass(frozen=True)
class Point:
    value: float | None  # None: nothing to draw there
    text: str  # as the table and the point's title give it


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    points: tuple[Point, ...]  # one per tick of the x axis


@dataclass(frozen=True)
class Target:
    series: str  # the key of the series it is the target of
    label: str
    value: float


@dataclass(frozen=True)
class Cell:
    """A table cell of the chart's data: what it says and which point it is."""

    text: str
    series: str
    x: str
    value: str  # as the SVG's point carries it in data-value


@dataclass(frozen=True)
class Row:
    header: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Table:
    caption: str
    columns: tuple[str, ...]  # the row headers' column first
    rows: tuple[Row, ...]


def data_value(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class LineChart:
    """Shares (0 to 1) over the ticks of the x axis, with their targets as labelled lines."""

    chart_id: str
    title: str
    description: str
    x_title: str
    y_title: str
    ticks: tuple[Tick, ...]
    series: tuple[Series, ...]
    targets: tuple[Target, ...] = ()

    def table(self) -> Table:
        targets = "；".join(t.label for t in self.targets)
        rows = tuple(
            Row(
                tick.full,
                tuple(
                    Cell(s.points[i].text, s.key, tick.key, data_value(s.points[i].value))
                    for s in self.series
                ),
            )
            for i, tick in enumerate(self.ticks)
        )
        caption = self.title + (f"（{targets}）" if targets else "")
        return Table(caption, (self.x_title, *(s.label for s in self.series)), rows)

    def svg(self) -> Markup:
        return Markup(_line_svg(self))


@dataclass(frozen=True)
class GridChart:
    """Counts by row (a unit) and column (a week), each written in its cell."""

    chart_id: str
    title: str
    description: str
    row_title: str
    column_title: str
    rows: tuple[Tick, ...]
    columns: tuple[Tick, ...]
    counts: tuple[tuple[int, ...], ...]  # per row, one per column

    def table(self) -> Table:
        rows = tuple(
            Row(
                row.full,
                tuple(
                    Cell(str(n), row.key, column.key, str(n))
                    for column, n in zip(self.columns, counts, strict=True)
                ),
            )
            for row, counts in zip(self.rows, self.counts, strict=True)
        )
        columns = (self.row_title, *(c.full for c in self.columns))
        return Table(self.title, columns, rows)

    def svg(self) -> Markup:
        return Markup(_grid_svg(self))


# --- drawing ----------------------------------------------------------------------------------


def _attrs(**values: object) -> str:
    return "".join(f' {name.replace("_", "-")}="{escape(str(v))}"' for name, v in values.items())


def _open_svg(chart_id: str, *, width: int, height: int, title: str, description: str) -> str:
    labelled = f"{chart_id}-title {chart_id}-desc"
    return (
        f'<svg class="chart-svg" xmlns="http://www.w3.org/2000/svg" role="img"'
        f"{_attrs(viewBox=f'0 0 {width} {height}', aria_labelledby=labelled, id=chart_id + '-svg')}"
        f' font-size="{FONT}">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>'
    )


def _text(x: float, y: float, content: str, **extra: object) -> str:
    return f"<text{_attrs(x=_n(x), y=_n(y), **extra)}>{escape(content)}</text>"


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def marker(shape: str, x: float, y: float, colour: str) -> str:
    """A series' marker: filled circle, open square, filled triangle or open diamond."""
    if shape == "circle":
        return f"<circle{_attrs(cx=_n(x), cy=_n(y), r=4.5, fill=colour)}/>"
    if shape == "square":
        return (
            f"<rect{_attrs(x=_n(x - 4.5), y=_n(y - 4.5), width=9, height=9)}"
            f' fill="#ffffff" stroke="{colour}" stroke-width="2"/>'
        )
    if shape == "triangle":
        points = f"{_n(x)},{_n(y - 5.5)} {_n(x + 5.5)},{_n(y + 4.5)} {_n(x - 5.5)},{_n(y + 4.5)}"
        return f'<polygon points="{points}" fill="{colour}"/>'
    points = f"{_n(x)},{_n(y - 6)} {_n(x + 6)},{_n(y)} {_n(x)},{_n(y + 6)} {_n(x - 6)},{_n(y)}"
    return f'<polygon points="{points}" fill="#ffffff" stroke="{colour}" stroke-width="2"/>'


@dataclass(frozen=True)
class _Frame:
    left: float
    top: float
    width: float
    height: float
    count: int  # ticks on the x axis

    def x(self, index: int) -> float:
        return self.left + (index + 0.5) * self.width / max(self.count, 1)

    def y(self, share: float) -> float:
        return self.top + (1 - share) * self.height


LINE_WIDTH, LINE_HEIGHT = 640, 300
LINE_FRAME = _Frame(left=56, top=44, width=440, height=200, count=0)


def _line_svg(chart: LineChart) -> str:
    frame = replace(LINE_FRAME, count=len(chart.ticks))
    parts = [
        _open_svg(
            chart.chart_id,
            width=LINE_WIDTH,
            height=LINE_HEIGHT,
            title=chart.title,
            description=chart.description,
        ),
        *_share_axes(chart, frame),
        *_legend(chart.series),
        *_target_lines(chart.targets, frame),
    ]
    for index, series in enumerate(chart.series):
        parts += _series(series, chart.ticks, frame, style=SERIES_STYLES[index % 4])
    return "".join(parts) + "</svg>"


def _share_axes(chart: LineChart, frame: _Frame) -> Iterator[str]:
    right = frame.left + frame.width
    for share in (0, 0.25, 0.5, 0.75, 1):
        y = frame.y(share)
        yield f'<line{_attrs(x1=frame.left, x2=right, y1=_n(y), y2=_n(y))} stroke="#e5e7eb"/>'
        yield _text(frame.left - 6, y + 4, f"{share:.0%}", text_anchor="end", fill="#374151")
    bottom = frame.top + frame.height
    yield f'<line{_attrs(x1=frame.left, x2=right, y1=bottom, y2=bottom)} stroke="#6b7280"/>'
    yield f'<line{_attrs(x1=frame.left, x2=frame.left, y1=frame.top, y2=bottom)} stroke="#6b7280"/>'
    for index, tick in enumerate(chart.ticks):
        yield _text(frame.x(index), bottom + 18, tick.label, text_anchor="middle", fill="#374151")
    middle = frame.top + frame.height / 2
    yield _text(
        14, middle, chart.y_title, text_anchor="middle", transform=f"rotate(-90 14 {_n(middle)})"
    )
    yield _text(frame.left + frame.width / 2, bottom + 40, chart.x_title, text_anchor="middle")


def _legend(series: tuple[Series, ...]) -> Iterator[str]:
    x = LINE_FRAME.left
    for index, one in enumerate(series):
        colour, dash, shape = SERIES_STYLES[index % 4]
        line = _attrs(x1=x, x2=x + 32, y1=16, y2=16, stroke=colour, stroke_width=2)
        yield f"<line{line}{_attrs(stroke_dasharray=dash) if dash else ''}/>"
        yield marker(shape, x + 16, 16, colour)
        yield _text(x + 38, 20, one.label, fill="#1f2937")
        x += 38 + FONT * len(one.label) + 24


def _target_lines(targets: tuple[Target, ...], frame: _Frame) -> Iterator[str]:
    right = frame.left + frame.width
    placed: list[float] = []
    for target in sorted(targets, key=lambda t: -t.value):
        y = frame.y(target.value)
        line = _attrs(x1=frame.left, x2=right, y1=_n(y), y2=_n(y), stroke=TARGET_COLOUR)
        yield f'<line{line} stroke-width="1.5" stroke-dasharray="1 3" class="target"/>'
        label_y = y + 4
        while any(abs(label_y - other) < FONT + 2 for other in placed):
            label_y += FONT + 2
        placed.append(label_y)
        yield _text(right + 6, label_y, target.label, fill=TARGET_COLOUR)


def _series(
    series: Series, ticks: tuple[Tick, ...], frame: _Frame, *, style: tuple[str, str, str]
) -> list[str]:
    colour, dash, shape = style
    parts = []
    for run in _runs(series.points):
        coordinates = " ".join(f"{_n(frame.x(i))},{_n(frame.y(v))}" for i, v in run)
        line = _attrs(points=coordinates, fill="none", stroke=colour, stroke_width=2)
        parts.append(f"<polyline{line}{_attrs(stroke_dasharray=dash) if dash else ''}/>")
    for index, (tick, point) in enumerate(zip(ticks, series.points, strict=True)):
        if point.value is None:
            continue
        data = _attrs(data_series=series.key, data_x=tick.key, data_value=data_value(point.value))
        parts.append(
            f'<g class="point"{data}><title>{escape(series.label)} · {escape(tick.full)}：'
            f"{escape(point.text)}</title>"
            f"{marker(shape, frame.x(index), frame.y(point.value), colour)}</g>"
        )
    return parts


def _runs(points: tuple[Point, ...]) -> list[list[tuple[int, float]]]:
    """The stretches of consecutive points with a value: a missing one breaks the line."""
    runs: list[list[tuple[int, float]]] = [[]]
    for index, point in enumerate(points):
        if point.value is None:
            runs.append([])
        else:
            runs[-1].append((index, point.value))
    return [run for run in runs if run]


GRID_LEFT, GRID_TOP, CELL_WIDTH, CELL_HEIGHT = 120, 28, 42, 24


def _grid_svg(chart: GridChart) -> str:
    width = GRID_LEFT + CELL_WIDTH * len(chart.columns) + 8
    height = GRID_TOP + CELL_HEIGHT * len(chart.rows) + 28
    parts = [
        _open_svg(
            chart.chart_id,
            width=width,
            height=height,
            title=chart.title,
            description=chart.description,
        )
    ]
    for index, column in enumerate(chart.columns):
        x = GRID_LEFT + (index + 0.5) * CELL_WIDTH
        parts.append(_text(x, GRID_TOP - 8, column.label, text_anchor="middle", fill="#374151"))
    for row_index, (row, counts) in enumerate(zip(chart.rows, chart.counts, strict=True)):
        y = GRID_TOP + row_index * CELL_HEIGHT
        parts.append(_text(GRID_LEFT - 6, y + 16, row.label, text_anchor="end", fill="#1f2937"))
        for index, (column, count) in enumerate(zip(chart.columns, counts, strict=True)):
            parts.append(_cell(row, column, count, x=GRID_LEFT + index * CELL_WIDTH, y=y))
    bottom = GRID_TOP + CELL_HEIGHT * len(chart.rows)
    middle = GRID_LEFT + CELL_WIDTH * len(chart.columns) / 2
    parts.append(_text(middle, bottom + 20, chart.column_title, text_anchor="middle"))
    return "".join(parts) + "</svg>"


def shade_of(count: int) -> tuple[str, str]:
    """The cell's fill and its figure's colour: darker for more."""
    if count == 0:
        return "#ffffff", "#1f2937"
    return next(((fill, ink) for least, fill, ink in SHADES if count >= least), ONE_SHADE)


def _cell(row: Tick, column: Tick, count: int, *, x: float, y: float) -> str:
    fill, ink = shade_of(count)
    data = _attrs(data_series=row.key, data_x=column.key, data_value=count)
    box = _attrs(x=x + 1, y=y + 1, width=CELL_WIDTH - 2, height=CELL_HEIGHT - 2, fill=fill)
    figure = (
        _text(x + CELL_WIDTH / 2, y + 16, str(count), text_anchor="middle", fill=ink)
        if count
        else ""
    )
    return (
        f'<g class="cell"{data}><title>{escape(row.full)} · {escape(column.full)}：{count}'
        f'</title><rect{box} stroke="#d1d5db"/>{figure}</g>'
    )
