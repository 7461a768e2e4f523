"""The application materials (申报材料) the county sends upward, in Chinese: the application,
each unit with its self-evaluation, rectifications, evidence and flag, and every step so far.

What each file shows, and the XLSX: three sheets (申报概况, 申报单位 with one row per unit,
办理过程), every cell written as text, so a spreadsheet program never runs what a county typed.
The PDF is set in `materials_pdf`; `material_files` renders either once per version."""

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from services.applications.records import Application, AppliedUnit, Step
from shared.campaign import SHANGHAI
from shared.case_rates import RATE_LABELS
from shared.levels import LEVEL_NAMES
from shared.registry.cache import UnitRegistry

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

APPLICATION_STATES = {
    "draft": "草稿（未申报）",
    "submitted": "已申报，待市级初审",
    "reviewed": "市级已初审，待省级命名",
    "decided": "省级已命名",
}
UNIT_STATES = {
    "proposed": "拟申报",
    "submitted": "已申报",
    "recommended": "市级推荐",
    "returned": "市级退回",
    "awarded": "已命名",
    "rejected": "未予命名",
    "revoked": "已摘牌",
}
ACTIONS = {
    "created": "创建申报",
    "submitted": "县级申报",
    "approved": "市级初审通过（推荐）",
    "returned": "市级初审退回",
    "awarded": "省级命名",
    "rejected": "省级未予命名",
    "flagged": "动态管理：失去三无状态",
    "flag_cleared": "动态管理：恢复三无状态",
    "revoked": "省级摘牌",
}
ROLES = {"bureau": "信访局", "admin": "管理员"}
CRITERIA = {
    "skip_level": "越级上访",
    "non_reception_site": "非接待场所",
    "collective": "集体上访",
    "incident": "极端事件及负面舆情",
}
UNIT_HEADINGS = [
    "单位代码",
    "单位名称",
    "层级",
    "办理状态",
    "自评情况",
    "整改情况",
    "三无状态",
    "计入事件（批次）",
    "例会情况",
    "群众满意率",
    "信访事项办理率",
    "动态管理标记",
    "标记事件",
    "审核意见",
]
STEP_HEADINGS = ["时间（北京时间）", "办理环节", "单位代码", "单位名称", "办理人", "理由", "密钥"]
# The most characters a cell of a spreadsheet holds; a longer text ends with CUT (the PDF
# carries it whole).
CELL_CHARACTERS = 32_767
CUT = "……（超出表格单元格的字数上限，全文见PDF申报材料）"


@dataclass(frozen=True, slots=True)
class Materials:
    application: Application
    steps: Sequence[Step]
    registry: UnitRegistry
    made_at: datetime

    def name_of(self, code: str | None) -> str:
        unit = self.registry.get_cached(code) if code else None
        return unit.name if unit else ""

    def level_of(self, code: str) -> str:
        unit = self.registry.get_cached(code)
        return LEVEL_NAMES[unit.level] if unit else ""

    @property
    def county_name(self) -> str:
        return self.name_of(self.application.county_code) or self.application.county_code

    @property
    def title(self) -> str:
        return f"{self.county_name}“三无”创建申报材料（{self.application.period}）"


def shown_time(moment: datetime | None) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if moment else ""


def submitted_status(unit: AppliedUnit) -> dict[str, Any]:
    """The status the unit was submitted on (the evidence's snapshot; empty before)."""
    status = (unit.evidence or {}).get("status")
    return status if isinstance(status, dict) else {}


def _figures(status: dict[str, Any], name: str) -> dict[str, int]:
    figures = status.get(name)
    return figures if isinstance(figures, dict) else {}


def status_cell(unit: AppliedUnit) -> str:
    status = submitted_status(unit)
    if not status:
        return "申报时记录"
    label = "三无" if status.get("three_no", True) else "非三无"
    version = status.get("version")
    return f"{label}（申报时状态版本 {version}）" if version else f"{label}（申报时无计入事件）"


def counts_cell(unit: AppliedUnit) -> str:
    status = submitted_status(unit)
    counts, people = _figures(status, "counts"), _figures(status, "people")
    parts = []
    for criterion, label in CRITERIA.items():
        batches = counts.get(criterion, 0)
        if batches:
            persons = people.get(criterion, 0)
            parts.append(f"{label}{batches}批" + (f"{persons}人次" if persons else ""))
    return "；".join(parts) or ("无" if status else "")


def cadence_cell(unit: AppliedUnit) -> str:
    cadence = (unit.evidence or {}).get("cadence")
    if not isinstance(cadence, dict):
        return "暂无记录"
    held, required = cadence.get("held"), cadence.get("required")
    missed = cadence.get("missed")
    missed_count = len(missed) if isinstance(missed, list) else missed
    text = f"应开{required}次，已开{held}次"
    return text + (f"，缺开{missed_count}次" if missed_count else "")


def satisfaction_cell(unit: AppliedUnit) -> str:
    satisfaction = (unit.evidence or {}).get("satisfaction")
    if not isinstance(satisfaction, dict):
        return "暂无记录"
    rate = satisfaction.get("rate")
    return f"{rate:.1%}" if isinstance(rate, int | float) else "暂无评价"


def case_rates_cell(unit: AppliedUnit) -> str:
    """Each rate that has cases due, as numerator/denominator and percentage."""
    rates = (unit.evidence or {}).get("case_rates")
    if not isinstance(rates, dict):
        return "暂无记录"
    shown = []
    for name, label in RATE_LABELS.items():
        rate = rates.get(name.value)
        if isinstance(rate, dict) and rate.get("denominator"):
            numerator, denominator = rate["numerator"], rate["denominator"]
            shown.append(f"{label}{numerator}/{denominator}（{numerator / denominator:.1%}）")
    return "；".join(shown) or "无到期事项"


def flag_cell(unit: AppliedUnit) -> str:
    return f"自{shown_time(unit.flag_since)}起失去三无状态" if unit.flag_since else "无"


def unit_row(materials: Materials, unit: AppliedUnit) -> list[str]:
    return [
        unit.unit_code,
        materials.name_of(unit.unit_code),
        materials.level_of(unit.unit_code),
        UNIT_STATES.get(unit.state, unit.state),
        unit.self_evaluation,
        "；".join(str(r) for r in unit.rectifications) or "无",
        status_cell(unit),
        counts_cell(unit),
        cadence_cell(unit),
        satisfaction_cell(unit),
        case_rates_cell(unit),
        flag_cell(unit),
        "、".join(unit.flag_event_ids or ()),
        unit.decision_reason or "",
    ]


def actor(materials: Materials, step: Step) -> str:
    """Who took the step: the bureau by its scope's name (a flag is the system's own)."""
    if step.role is None:
        return "系统（动态管理）"
    role = ROLES.get(step.role, step.role)
    return f"{materials.name_of(step.scope_code) or step.scope_code or ''}{role}"


def step_row(materials: Materials, step: Step) -> list[str]:
    return [
        shown_time(step.at),
        ACTIONS.get(step.action, step.action),
        step.unit_code or "",
        materials.name_of(step.unit_code),
        actor(materials, step),
        step.reason or "",
        step.key_id or "",
    ]


def summary_rows(materials: Materials) -> list[list[str]]:
    application = materials.application
    units = application.units
    return [
        ["申报单位", f"{materials.county_name}（{application.county_code}）"],
        ["考核期", application.period],
        ["申报编号", str(application.application_id)],
        ["申报状态", APPLICATION_STATES.get(application.state, application.state)],
        ["版本", str(application.version)],
        ["创建时间", shown_time(application.created_at)],
        ["最近办理", shown_time(application.updated_at)],
        ["申报单位数", str(len(units))],
        ["动态管理标记单位数", str(sum(1 for u in units if u.flag_since))],
        ["材料生成时间", shown_time(materials.made_at)],
    ]


# --- XLSX -------------------------------------------------------------------------------------


def _text(sheet: WriteOnlyWorksheet, value: str, *, bold: bool = False) -> WriteOnlyCell:
    # A control character the API let through (a vertical tab, an escape) has no place in a
    # worksheet's XML: shown as U+FFFD rather than failing the file.
    value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    if len(value) > CELL_CHARACTERS:  # what a spreadsheet program keeps of a cell
        value = value[: CELL_CHARACTERS - len(CUT)] + CUT
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"  # text: never a formula, whatever it starts with
    cell.alignment = Alignment(wrap_text=True, vertical="top")
    if bold:
        cell.font = Font(bold=True)
    return cell


def _write(
    sheet: WriteOnlyWorksheet,
    *,
    headings: list[str],
    rows: Iterator[list[str]],
    widths: list[int],
) -> None:
    for index, width in enumerate(widths):
        sheet.column_dimensions[chr(ord("A") + index)].width = width
    sheet.append([_text(sheet, h, bold=True) for h in headings])
    for row in rows:
        sheet.append([_text(sheet, value) for value in row])


def to_xlsx(materials: Materials) -> bytes:
    workbook = Workbook(write_only=True)
    summary = workbook.create_sheet("申报概况")
    summary.append([_text(summary, materials.title, bold=True)])
    _write(summary, headings=["项目", "内容"], rows=iter(summary_rows(materials)), widths=[20, 60])
    units = workbook.create_sheet("申报单位")
    _write(
        units,
        headings=UNIT_HEADINGS,
        rows=(unit_row(materials, u) for u in materials.application.units),
        widths=[15, 20, 12, 12, 40, 30, 18, 30, 22, 12, 26, 40, 30],
    )
    steps = workbook.create_sheet("办理过程")
    _write(
        steps,
        headings=STEP_HEADINGS,
        rows=(step_row(materials, s) for s in materials.steps),
        widths=[18, 26, 15, 20, 24, 40, 14],
    )
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
