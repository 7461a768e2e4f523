"""The front desk's 登记 form: which fields each kind of record has, the plan's wording beside
each, and the event posted to intake. The form carries its own event id, chosen when it was
opened, so a second click or a reload of the answer records nothing twice (intake is
idempotent by event id). Every check is intake's: its refusals come back field by field."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from services.console import labels
from services.console.clients.http import Refusal, refusals_of

FORM_TYPES = (
    "petition_visit",
    "incident",
    "public_opinion",
    "screening_meeting",
    "satisfaction_rating",
)


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # text, number, datetime, select, checkbox, textarea
    hint: str = ""
    options: dict[str, str] = field(default_factory=dict)
    required: bool = True


UNIT = Field("unit_code", "text", "12位统计用区划代码。事件计入属地：通常为来访人所在村（居）")
OCCURRED = Field("occurred_at", "datetime", "北京时间。按发生时间计入考核期，可补录")

FIELDS: dict[str, list[Field]] = {
    "petition_visit": [
        UNIT,
        OCCURRED,
        Field(
            "destination_level",
            "select",
            "到县5人（含）以上为村（居）集体上访；到市5人（含）以上为乡镇集体上访；"
            "到县以上（不含县）超过50人为县集体上访",
            options=labels.DESTINATIONS,
        ),
        Field("headcount", "number", "来访人数（1人以上）"),
        Field(
            "skip_level",
            "checkbox",
            "越级上访（含涉法涉诉）：村（居）到市及以上、乡镇到省及以上、县进京",
            required=False,
        ),
        Field(
            "non_reception_site",
            "checkbox",
            "在天安门地区、中南海周边、外国驻华使馆区等非接待场所被发现",
            required=False,
        ),
        Field("law_related", "checkbox", "涉法涉诉，与其他上访同样计入", required=False),
        Field("category", "text", "可空", required=False),
        Field("petitioner_ref", "text", "可空；只保存其密钥散列，用于重复访预警", required=False),
    ],
    "incident": [
        UNIT,
        OCCURRED,
        Field(
            "kind",
            "select",
            "因信访问题引发的极端恶性事件，一起即不再三无",
            options=labels.INCIDENT_KINDS,
        ),
        Field("summary", "textarea", "简要经过（仅登记窗口可见）"),
    ],
    "public_opinion": [
        UNIT,
        OCCURRED,
        Field("platform", "text", "舆论负面炒作，一起即不再三无"),
        Field("summary", "textarea", "简要情况（仅登记窗口可见）"),
    ],
    "screening_meeting": [
        UNIT,
        OCCURRED,
        Field("attendees", "number", "排查调处例会：县每月一次、乡镇每半月一次、村（居）每周一次"),
        Field("disputes_found", "number", "本次排查出的矛盾纠纷数（0以上）"),
        Field("disputes_resolved", "number", "已化解数，不超过排查数"),
        Field("summary", "textarea", "会议纪要，可空", required=False),
    ],
    "satisfaction_rating": [
        UNIT,
        OCCURRED,
        Field("rating", "select", "满意与基本满意计入群众满意率", options=labels.RATINGS),
        Field("source", "select", "社会满意度评价、第三方考评", options=labels.RATING_SOURCES),
        Field("matter_ref", "text", "可空；只保存其密钥散列", required=False),
    ],
}


def payload_of(kind: str, form: dict[str, str], *, event_id: str) -> dict[str, Any]:
    """The event as intake takes it: empty optional fields left out, numbers as numbers
    where they are, the time as Beijing time; anything else is sent as typed, for intake to
    refuse by field."""
    payload: dict[str, Any] = {"event_id": event_id, "type": kind}
    for spec in FIELDS[kind]:
        value = form.get(spec.name, "").strip()
        if spec.kind == "checkbox":
            payload[spec.name] = value in ("on", "true", "1")
        elif value == "":
            continue
        elif spec.kind == "number":
            payload[spec.name] = number_or_text(value)
        elif spec.kind == "datetime":
            payload[spec.name] = beijing_time(value)
        else:
            payload[spec.name] = value
    return payload


def number_or_text(value: str) -> int | str:
    """An integer when the field holds one in ASCII digits; otherwise the text as typed, for
    intake to refuse by field ("²" and "٣" pass str.isdigit() but are no number here)."""
    digits = value.removeprefix("-")
    return int(value) if digits.isascii() and digits.isdigit() else value


def beijing_time(value: str) -> str:
    """`2018-06-03T09:30` from a datetime-local field, in RFC 3339 at +08:00."""
    if len(value) == 16:
        value += ":00"
    has_offset = value.endswith("Z") or "+" in value[10:] or "-" in value[10:]
    return value if has_offset else value + "+08:00"


def field_errors(errors: list[dict[str, Any]] | None) -> dict[str, str]:
    """Intake's refusals by form field, in Chinese; what names no field of the form under ''."""
    found: dict[str, str] = {}
    for error in refusals_of(errors):
        name = error.field or ""
        message = labels.field_message(error)
        key = name if name in labels.FIELD_NAMES else ""
        found[key] = f"{found[key]}；{message}" if key in found else message
    return found


# --- 异议 ----------------------------------------------------------------------------------------
# A filing carries its dispute id, chosen when its form was opened, as the 登记 form carries
# its event id: a second click files nothing twice. Every check is the cases service's.

OPTIONAL_BY_GROUNDS = {"not_ours": "proposed_unit", "duplicate": "duplicate_of"}


@dataclass(frozen=True)
class DisputeFiling:
    """The filing form of an event's page: its dispute id, and after a refusal, the form as
    sent and why."""

    dispute_id: str
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(cls) -> "DisputeFiling":
        return cls(str(uuid.uuid4()))


def filing_of(form: dict[str, str], *, event_id: str) -> dict[str, Any]:
    """The dispute as the cases service takes it: the unit or event the grounds name, when
    given, and the rest as typed."""
    grounds = form.get("grounds", "")
    filing: dict[str, Any] = {
        "dispute_id": form.get("dispute_id", ""),
        "event_id": event_id,
        "grounds": grounds,
        "statement": form.get("statement", "").strip(),
    }
    named = OPTIONAL_BY_GROUNDS.get(grounds)
    if named and form.get(named, "").strip():
        filing[named] = form[named].strip()
    return filing


def ruling_of(form: dict[str, str]) -> dict[str, Any]:
    """A decision or a review: the new unit only with a re-attribution."""
    decision = form.get("decision", "")
    ruling: dict[str, Any] = {"decision": decision, "reason": form.get("reason", "").strip()}
    if decision == "uphold_reattribute" and form.get("new_unit", "").strip():
        ruling["new_unit"] = form["new_unit"].strip()
    return ruling


def reason_of(form: dict[str, str]) -> dict[str, Any]:
    """A withdrawal or a request for review: its reason."""
    return {"reason": form.get("reason", "").strip()}


def dispute_errors(errors: list[dict[str, Any]] | None) -> dict[str, str]:
    """The cases service's refusals by form field, in Chinese; what names no field of the
    form (a late filing, an event that cannot be disputed) under ''."""
    found: dict[str, str] = {}
    for error in refusals_of(errors):
        name = error.field or ""
        key = name if name in labels.DISPUTE_FIELDS else ""
        message = _dispute_message(error)
        found[key] = f"{found[key]}；{message}" if key in found else message
    return found


def _dispute_message(error: Refusal) -> str:
    if error.dispute_until:
        return f"已过异议期，不能再提出异议：最后一天是 {error.dispute_until}"
    if error.last_day:
        return f"已过申请复核的期限：最后一天是 {error.last_day}"
    if error.message in labels.DISPUTE_REFUSALS:
        return labels.DISPUTE_REFUSALS[error.message]
    if error.type == "uuid_parsing":
        return "请填写正确的事件编号"
    if error.field in ("decision", "grounds") and error.type in ("enum", "missing"):
        return "请选择一项"
    if error.field in ("reason", "statement") and error.type == "string_too_short":
        return "此项必填"
    if error.field == "reason" and not error.type:
        return "此项必填"
    if error.field == "new_unit" and not error.type:
        return "改属地时必须填写新属地单位代码"
    return labels.field_message(error)
