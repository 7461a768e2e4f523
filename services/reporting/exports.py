"""The eligible list as a file for the county to send upward: CSV (UTF-8 with BOM, so that
spreadsheet programs read the Chinese) and XLSX. Both start with a block saying which root,
period and level the list is for and when it was made; the XLSX adds a sheet with the units
that are not eligible and why."""

import csv
import io
from collections.abc import Iterator

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from services.reporting.eligibility import Eligibility, parent_name
from services.reporting.readmodel import StoredStatus
from shared.campaign import SHANGHAI
from shared.levels import LEVEL_NAMES, Level
from shared.registry.cache import UnitRef, UnitRegistry

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

RECORD_HEADINGS = ["例会应开", "例会已开", "例会缺开", "满意率"]
ELIGIBLE_HEADINGS = [
    "单位代码",
    "单位名称",
    "层级",
    "上级单位代码",
    "上级单位名称",
    *RECORD_HEADINGS,
]
NOT_ELIGIBLE_HEADINGS = [
    "单位代码",
    "单位名称",
    "上级单位名称",
    "越级上访（批次）",
    "越级上访（人次）",
    "非接待场所（批次）",
    "非接待场所（人次）",
    "集体上访（批次）",
    "集体上访（人次）",
    "极端事件及负面舆情（起）",
    "不符合原因",
    *RECORD_HEADINGS,
]
# What spreadsheet programs take for the start of a formula (OWASP's list for CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def filename(root: str, period: str, level: Level, extension: str) -> str:
    return f"eligible-{root}-{period}-{level.value}.{extension}"


def _period_label(report: Eligibility) -> str:
    if report.period is None:
        return f"{report.period_id}（截至导出时的近12个月）"
    return f"{report.period_id}（{report.period.start} 至 {report.period.end}）"


def header_block(
    report: Eligibility, *, title: str, count_label: str, count: int
) -> list[list[str]]:
    as_of = report.as_of.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    return [
        [f"{report.root.name}{title}"],
        ["统计范围", f"{report.root.name}（{report.root.code}）"],
        ["考核期", _period_label(report)],
        ["单位层级", LEVEL_NAMES[report.level]],
        ["数据截至", f"{as_of}（北京时间）"],
        [count_label, str(count)],
        [],
    ]


def _parent_name(registry: UnitRegistry, unit: UnitRef) -> str:
    return parent_name(registry, unit) or ""


def record_cells(report: Eligibility, unit: UnitRef) -> list[str]:
    """例会应开/已开/缺开 as of the export (slots started in the period so far; the running
    one is required but neither held nor missed), and 满意率 (empty when nothing was rated)."""
    records = report.records.get(unit.code)
    if records is None:
        return [""] * len(RECORD_HEADINGS)
    meetings, rate = records.meetings, records.satisfaction_rate
    shown_rate = "" if rate is None else f"{rate:.1%}"
    return [str(meetings.required), str(meetings.held), str(len(meetings.missed)), shown_rate]


def eligible_rows(report: Eligibility, registry: UnitRegistry) -> Iterator[list[str]]:
    for unit in report.eligible:
        yield [
            unit.code,
            unit.name,
            LEVEL_NAMES[unit.level],
            unit.parent_code or "",
            _parent_name(registry, unit),
            *record_cells(report, unit),
        ]


def reason(status: StoredStatus) -> str:
    skip, non_reception, collective, incident = status.batches
    skip_people, non_reception_people, collective_people, _ = status.people
    parts = []
    if skip:
        parts.append(f"越级上访{skip}批{skip_people}人次")
    if non_reception:
        parts.append(f"非接待场所{non_reception}批{non_reception_people}人次")
    if collective:
        parts.append(f"集体上访{collective}批{collective_people}人次")
    if incident:
        parts.append(f"极端事件或负面舆情{incident}起")
    return "；".join(parts) or "有计入事件"


def not_eligible_rows(report: Eligibility, registry: UnitRegistry) -> Iterator[list[str | int]]:
    for unit, status in report.not_eligible:
        batches, people = status.batches, status.people
        yield [
            unit.code,
            unit.name,
            _parent_name(registry, unit),
            batches[0],
            people[0],
            batches[1],
            people[1],
            batches[2],
            people[2],
            batches[3],
            reason(status),
            *record_cells(report, unit),
        ]


def _safe(value: str) -> str:
    """Spreadsheet programs run cells that start like a formula; names never should."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _safe_row(values: list[str]) -> list[str]:
    return [_safe(v) for v in values]


def to_csv(report: Eligibility, registry: UnitRegistry) -> bytes:
    """Every cell is neutralised, the header block's too (it names the root). The XLSX needs
    no such prefix: its cells are written as text, which spreadsheet programs never run."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    title, label = "三无创建可申报单位名单", "可申报单位数"
    block = header_block(report, title=title, count_label=label, count=len(report.eligible))
    writer.writerows(_safe_row(row) for row in block)
    writer.writerow(_safe_row(ELIGIBLE_HEADINGS))
    writer.writerows(_safe_row(row) for row in eligible_rows(report, registry))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(report: Eligibility, registry: UnitRegistry) -> bytes:
    workbook = Workbook(write_only=True)
    eligible = workbook.create_sheet("可申报单位")
    _write_sheet(
        eligible,
        header_block(
            report,
            title="三无创建可申报单位名单",
            count_label="可申报单位数",
            count=len(report.eligible),
        ),
        ELIGIBLE_HEADINGS,
        eligible_rows(report, registry),
        widths=[16, 24, 14, 16, 24, *[10] * len(RECORD_HEADINGS)],
    )
    not_eligible = workbook.create_sheet("不符合条件单位")
    _write_sheet(
        not_eligible,
        header_block(
            report,
            title="三无创建不符合申报条件单位及原因",
            count_label="不符合条件单位数",
            count=len(report.not_eligible),
        ),
        NOT_ELIGIBLE_HEADINGS,
        not_eligible_rows(report, registry),
        widths=[16, 24, 24, *[12] * 7, 40, *[10] * len(RECORD_HEADINGS)],
    )
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _write_sheet(
    sheet: WriteOnlyWorksheet,
    block: list[list[str]],
    headings: list[str],
    rows: Iterator[list[str]] | Iterator[list[str | int]],
    *,
    widths: list[int],
) -> None:
    for index, width in enumerate(widths):
        sheet.column_dimensions[chr(ord("A") + index)].width = width
    bold = Font(bold=True)
    for line, values in enumerate(block):
        sheet.append([_cell(sheet, v, font=bold if line == 0 else None) for v in values])
    sheet.append([_cell(sheet, h, font=bold) for h in headings])
    for row in rows:
        sheet.append([_cell(sheet, v) for v in row])


def _cell(
    sheet: WriteOnlyWorksheet, value: str | int, *, font: Font | None = None
) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # text, even when it starts like a formula
    if font is not None:
        cell.font = font
    return cell
