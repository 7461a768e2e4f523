"""Work records as spreadsheets (xlsx or csv): the columns with their Chinese headings, the
Chinese words accepted for coded values, templates to fill in, and reading a filled-in sheet
into rows of field values named by their line in the sheet."""

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any

from shared.campaign import SHANGHAI
from shared.errors import InvalidInput
from shared.events import EXAMPLES, EventType, Rating, RatingSource


class SheetFormat(StrEnum):
    xlsx = "xlsx"
    csv = "csv"


class RecordType(StrEnum):
    satisfaction_rating = "satisfaction_rating"
    screening_meeting = "screening_meeting"


@dataclass(frozen=True, slots=True)
class Column:
    field: str
    heading: str
    note: str
    choices: dict[str, str] | None = None  # the Chinese word offered for each code


RATINGS = {
    "满意": Rating.satisfied.value,
    "基本满意": Rating.basically_satisfied.value,
    "不满意": Rating.dissatisfied.value,
}
SOURCES = {
    "信访群众": RatingSource.petitioner.value,
    "第三方": RatingSource.third_party.value,
    "代表委员": RatingSource.representative.value,
}
# Other words the plan uses for the same codes, accepted on import.
ALIASES = {
    "source": {
        "第三方考评": RatingSource.third_party.value,
        "两代表一委员": RatingSource.representative.value,
        "居民代表": RatingSource.representative.value,
    }
}
COMMON = (
    Column("event_id", "事件编号(可空)", "UUID；留空则按行内容生成，重复导入不会重复记录"),
    Column("unit_code", "单位代码", "12位单位代码"),
    Column(
        "occurred_at",
        "发生时间",
        "如 2018-06-20 11:00 或 2018-06-20T11:00:00+08:00；未写时区按北京时间",
    ),
)
COLUMNS: dict[RecordType, tuple[Column, ...]] = {
    RecordType.satisfaction_rating: (
        *COMMON,
        Column("rating", "评价结果", "满意、基本满意、不满意", RATINGS),
        Column("source", "评价来源", "信访群众、第三方、代表委员", SOURCES),
        Column("matter_ref", "事项编号", "可空；只以加密摘要保存"),
    ),
    RecordType.screening_meeting: (
        *COMMON,
        Column("attendees", "参会人数", "至少1人"),
        Column("disputes_found", "排查矛盾纠纷数", "0或以上"),
        Column("disputes_resolved", "化解数", "0到排查矛盾纠纷数"),
        Column("summary", "会议纪要", "可空；只在录入系统保存，不对外发布"),
    ),
}
SHEET_TITLES = {
    RecordType.satisfaction_rating: "满意度评价",
    RecordType.screening_meeting: "排查调处例会",
}


@dataclass(frozen=True, slots=True)
class SheetRow:
    line: int  # as the sheet numbers it, the headings being line 1
    values: dict[str, Any]  # by field; empty cells left out


# --- templates ---------------------------------------------------------------------------


def example_row(record_type: RecordType) -> list[Any]:
    example = dict(EXAMPLES[EventType(record_type.value)])
    example["occurred_at"] = datetime.fromisoformat(str(example["occurred_at"])).strftime(
        "%Y-%m-%d %H:%M"
    )
    cells = []
    for column in COLUMNS[record_type]:
        value = "" if column.field == "event_id" else example.get(column.field, "")
        if column.choices:
            value = next((word for word, code in column.choices.items() if code == value), value)
        cells.append(value)
    return cells


def write_template(path: Path, *, record_type: RecordType, sheet_format: SheetFormat) -> None:
    columns = COLUMNS[record_type]
    headings = [c.heading for c in columns]
    if sheet_format is SheetFormat.csv:
        # With a BOM, as Excel writes UTF-8, so that Excel shows the Chinese headings.
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(headings)
            writer.writerow(example_row(record_type))
        return
    # Imported here: openpyxl takes long to import, and every `sanwu` command loads this module.
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = SHEET_TITLES[record_type]
    sheet.append(headings)
    sheet.append(example_row(record_type))
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        sheet[f"{letter}1"].font = Font(bold=True)
        sheet.column_dimensions[letter].width = max(14, 2 * len(column.heading) + 4)
        if column.choices:
            # A warning, not a stop: the codes (satisfied, third_party, ...) are accepted too.
            validation = DataValidation(
                type="list",
                formula1='"' + ",".join(column.choices) + '"',
                allow_blank=True,
                showErrorMessage=True,
                errorStyle="warning",
                error="请从列表中选择，或填写代码（如 satisfied、third_party）",
            )
            validation.add(f"{letter}2:{letter}100000")
            sheet.add_data_validation(validation)
    notes = workbook.create_sheet("说明")
    notes.append(["列", "说明"])
    for column in columns:
        notes.append([column.heading, column.note])
    notes.append(["", "第2行为示例，导入前请替换或删除；每行一条记录。"])
    workbook.save(path)


# --- reading -----------------------------------------------------------------------------


# What an import reads: a file of at most MAX_FILE_BYTES (an xlsx, a zip, unpacking to at most
# MAX_UNPACKED_BYTES), of at most MAX_ROWS rows of records.
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_UNPACKED_BYTES = 200 * 1024 * 1024
MAX_ROWS = 100_000


def read_sheet(path: Path) -> tuple[RecordType, list[SheetRow]]:
    """The sheet's record type, told by its columns, and its non-empty rows. Headings may be
    the Chinese ones or the field names; other columns are left out. InvalidInput for a file
    past the limits, naming the limit."""
    _check_size(path)
    lines = _xlsx_lines(path) if path.suffix.lower() == ".xlsx" else _csv_lines(path)
    headings = next(lines, None)
    if headings is None:
        raise InvalidInput(f"{path.name} is empty")
    fields = [_field_of(h) for h in headings]
    record_type = _record_type_of(fields)
    rows: list[SheetRow] = []
    for line, cells in enumerate(lines, start=2):
        values = {
            field: _cell_value(cell)
            for field, cell in zip(fields, cells, strict=False)
            if field is not None and _cell_value(cell) is not None
        }
        if values:
            if len(rows) == MAX_ROWS:
                raise InvalidInput(
                    f"{path.name} has more than {MAX_ROWS:,} rows of records; an import takes at "
                    f"most {MAX_ROWS:,}: split the file"
                )
            rows.append(SheetRow(line, values))
    return record_type, rows


def _check_size(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InvalidInput(
            f"{path.name} is {size / 2**20:.1f} MiB; an import takes files of at most "
            f"{MAX_FILE_BYTES // 2**20} MiB: split the file"
        )
    if path.suffix.lower() == ".xlsx":
        with zipfile.ZipFile(path) as packed:
            unpacked = sum(member.file_size for member in packed.infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            raise InvalidInput(
                f"{path.name} unpacks to {unpacked / 2**20:.1f} MiB; an import takes an xlsx "
                f"unpacking to at most {MAX_UNPACKED_BYTES // 2**20} MiB: split the file"
            )


def _xlsx_lines(path: Path) -> Iterator[tuple[Any, ...]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.worksheets[0]
        yield from sheet.iter_rows(values_only=True)
    finally:
        workbook.close()


def _csv_lines(path: Path) -> Iterator[tuple[Any, ...]]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030")  # what Excel writes as "CSV" on a Chinese Windows
    # A record, like a row of the sheet Excel shows, may span lines (a cell with line breaks).
    for record in csv.reader(io.StringIO(text, newline="")):
        yield tuple(record)


_BY_HEADING = {c.heading: c.field for columns in COLUMNS.values() for c in columns} | {
    c.field: c.field for columns in COLUMNS.values() for c in columns
}


def _field_of(heading: Any) -> str | None:
    return _BY_HEADING.get(str(heading).strip() if heading is not None else "")


def _record_type_of(fields: list[str | None]) -> RecordType:
    for record_type, columns in COLUMNS.items():
        own = {c.field for c in columns[len(COMMON) :]}
        if own & set(fields):
            return record_type
    known = "、".join(c.heading for columns in COLUMNS.values() for c in columns[len(COMMON) :])
    raise InvalidInput(f"the first line names none of the columns {known}")


def _cell_value(cell: Any) -> Any:
    if cell is None:
        return None
    if isinstance(cell, str):
        return cell.strip() or None
    if isinstance(cell, float) and cell.is_integer():
        return int(cell)
    return cell


# --- values as people write them ---------------------------------------------------------

_DATE_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d")


def as_event_fields(values: dict[str, Any], record_type: RecordType) -> dict[str, Any]:
    """The row's values as intake takes them: Chinese words as codes, a time without offset
    as Beijing time, numbers as numbers. A value that cannot be read is left as written, for
    the event's validation to name."""
    fields = dict(values)
    for column in COLUMNS[record_type]:
        words = (column.choices or {}) | ALIASES.get(column.field, {})
        if words and isinstance(fields.get(column.field), str):
            fields[column.field] = words.get(fields[column.field], fields[column.field])
    if "occurred_at" in fields:
        fields["occurred_at"] = _as_time(fields["occurred_at"])
    if "unit_code" in fields and isinstance(fields["unit_code"], int):
        fields["unit_code"] = str(fields["unit_code"])
    return fields | {"type": record_type.value}


def _as_time(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str):
        parsed = _parse_time(value)
        if parsed is None:
            return value
        moment = parsed
    else:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return moment.isoformat()


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None
