"""The application materials as PDF, set in Noto Sans CJK (the Debian package fonts-noto-cjk,
installed by deploy/install-system.sh), embedded as a subset, so every reader shows the Chinese
without fonts of its own.

Tables are drawn here line by line rather than by fpdf2's tables, whose rows cannot be taller
than a page: a row whose text does not fit on what is left of the page goes on over the next
(its cells' borders open there, the headings repeated above), so that a self-evaluation,
rectification or reason of any length the API accepts is printed whole."""

from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos

from services.applications.materials import (
    STEP_HEADINGS,
    UNIT_HEADINGS,
    Materials,
    step_row,
    summary_rows,
    unit_row,
)
from services.applications.records import AppliedUnit
from shared.errors import DependencyUnavailable

PDF_MEDIA_TYPE = "application/pdf"
# The collections' faces, and their Simplified Chinese member.
FONT_FILE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
BOLD_FONT_FILE = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")
FONT_SC = 2
FONT = "NotoSansSC"
SIZE = 9  # points, of table text
LINE = 5.0  # mm, a line of table text
PAD = 1.0  # mm above and below a cell's text
# A row that must go on over the next page leaves at least this many lines before the break
# (or all it has): no row starts with a lone line at the foot of a page.
FEWEST_LINES = 3
HEADING_FILL = 235  # grey
# The columns of the units at a glance, by their headings in the unit table.
OVERVIEW_HEADINGS = ("单位代码", "单位名称", "层级", "办理状态", "动态管理标记")


def _document(materials: Materials) -> FPDF:
    missing = [str(f) for f in (FONT_FILE, BOLD_FONT_FILE) if not f.exists()]
    if missing:
        raise DependencyUnavailable(
            "the CJK font for PDF materials", f"{missing} missing: install fonts-noto-cjk"
        )
    pdf = FPDF(orientation="portrait", unit="mm", format="A4")
    pdf.set_title(materials.title)
    pdf.set_creator("sanwu")
    pdf.add_font(FONT, fname=str(FONT_FILE), collection_font_number=FONT_SC)
    pdf.add_font(FONT, style="B", fname=str(BOLD_FONT_FILE), collection_font_number=FONT_SC)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_margins(left=15, top=15, right=15)
    pdf.add_page()
    return pdf


def _heading(pdf: FPDF, text: str, *, size: int = 13) -> None:
    pdf.set_font(FONT, size=size)
    pdf.ln(2)
    pdf.multi_cell(0, size * 0.6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)
    pdf.set_font(FONT, size=SIZE)


def _lines(pdf: FPDF, text: str, width: float) -> list[str]:
    """The text as the lines it takes in a cell of this width."""
    if not text:
        return [""]
    lines = pdf.multi_cell(width, LINE, text, dry_run=True, output=MethodReturnValue.LINES)
    assert isinstance(lines, list)
    return [str(line) for line in lines] or [""]


def _draw(
    pdf: FPDF, columns: Sequence[Sequence[str]], widths: Sequence[float], *, heading: bool
) -> None:
    """One page's part of a row: each cell's lines in its bordered box."""
    pdf.set_font(FONT, style="B" if heading else "", size=SIZE)
    height = max(len(lines) for lines in columns) * LINE + 2 * PAD
    top, x = pdf.get_y(), pdf.l_margin
    for lines, width in zip(columns, widths, strict=True):
        if heading:
            pdf.set_fill_color(HEADING_FILL)
        pdf.rect(x, top, width, height, style="DF" if heading else "D")
        for index, line in enumerate(lines):
            pdf.set_xy(x, top + PAD + index * LINE)
            pdf.cell(width, LINE, line)
        x += width
    pdf.set_xy(pdf.l_margin, top + height)
    pdf.set_font(FONT, size=SIZE)


def _row(
    pdf: FPDF,
    cells: Sequence[str],
    widths: Sequence[float],
    *,
    headings: Sequence[str] | None = None,
    heading: bool = False,
) -> None:
    """A row, split over as many pages as its longest cell needs; the headings (if any) are
    drawn again at the top of each new page."""
    pdf.set_font(FONT, style="B" if heading else "", size=SIZE)
    lines = [_lines(pdf, text, width) for text, width in zip(cells, widths, strict=True)]
    total = max(len(cell) for cell in lines)
    done = 0
    while done < total:
        room = int((pdf.page_break_trigger - pdf.get_y() - 2 * PAD) // LINE)
        if room < min(FEWEST_LINES, total - done):
            pdf.add_page()
            if headings is not None:
                _row(pdf, headings, widths, heading=True)
            continue
        part = min(room, total - done)
        _draw(pdf, [cell[done : done + part] for cell in lines], widths, heading=heading)
        done += part


def _table(
    pdf: FPDF, rows: list[list[str]], *, widths: tuple[int, ...], headings: bool = True
) -> None:
    """A table whose first row is its headings (or, without them, of label and value)."""
    head = rows[0] if headings else None
    if head is not None:
        _row(pdf, head, widths, heading=True)
    for row in rows[1:] if headings else rows:
        _row(pdf, row, widths, headings=head)
    pdf.ln(2)


def _unit_section(pdf: FPDF, materials: Materials, unit: AppliedUnit) -> None:
    row = dict(zip(UNIT_HEADINGS, unit_row(materials, unit), strict=True))
    _heading(pdf, f"{row['单位名称']}（{unit.unit_code}，{row['层级']}）", size=11)
    fields = [[name, row[name] or "无"] for name in UNIT_HEADINGS[3:]]
    _table(pdf, fields, widths=(30, 150), headings=False)


def to_pdf(materials: Materials) -> bytes:
    pdf = _document(materials)
    pdf.set_font(FONT, size=16)
    pdf.multi_cell(0, 9, materials.title, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    _heading(pdf, "一、申报概况")
    _table(pdf, summary_rows(materials), widths=(45, 135), headings=False)
    _heading(pdf, "二、申报单位一览")
    overview = [list(OVERVIEW_HEADINGS)]
    for unit in materials.application.units:
        row = dict(zip(UNIT_HEADINGS, unit_row(materials, unit), strict=True))
        overview.append([row[name] for name in OVERVIEW_HEADINGS])
    _table(pdf, overview, widths=(30, 45, 25, 30, 50))
    _heading(pdf, "三、各单位自评、整改与证据")
    for unit in materials.application.units:
        _unit_section(pdf, materials, unit)
    _heading(pdf, "四、办理过程")
    steps = [STEP_HEADINGS[:6]] + [step_row(materials, s)[:6] for s in materials.steps]
    _table(pdf, steps, widths=(28, 30, 24, 24, 26, 48))
    return bytes(pdf.output())
