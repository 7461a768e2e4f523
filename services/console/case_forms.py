"""The 信访事项 forms: the desk's registration (一站式接待) and each step of a case, as the cases
service takes them, and its refusals by form field in Chinese. The registration carries its
case id, chosen when its form was opened, so a second click registers nothing twice. Every
check is the cases service's."""

import re
from dataclasses import dataclass, field
from typing import Any

from services.console import labels
from services.console.clients.http import Refusal, refusals_of
from services.console.forms import Field, beijing_time, number_or_text

UNIT_HINT = "12位统计用区划代码"
AT = Field(
    "at", "datetime", "可空：补录纸质记录时填写实际办理时间（北京时间），默认为现在", required=False
)

REGISTRATION = [
    Field("unit_code", "text", UNIT_HINT + "：信访事项的属地，本窗口为首接责任单位"),
    Field("received_at", "datetime", "北京时间，可补录。转送交办期限（15日）自收到之日起算"),
    Field("channel", "select", "来访、来信、来电或网上信访", options=labels.CHANNELS),
    Field("category", "text", "如 社会救助、劳动保障、土地征收"),
    Field(
        "petitioner_ref",
        "text",
        "只保存其密钥散列。同一信访人同一类别的事项未终结时再登记，计为重复信访",
    ),
    Field("headcount", "number", "信访人数（1人以上）"),
    Field("summary", "textarea", "信访人的诉求（登记窗口、信访局和处理机构可见，查阅密钥不可见）"),
]


@dataclass(frozen=True)
class StepForm:
    """A step's form: its title, the API step it posts to and its fields."""

    title: str
    hint: str
    step: str  # the path under /v1/cases/{id}/
    fields: list[Field] = field(default_factory=list)
    note: str | None = None  # a note's kind (POST …/steps)
    danger: bool = False


def _text(name: str, hint: str = "必填", *, required: bool = True) -> Field:
    return Field(name, "textarea", hint, required=required)


OUTCOME = Field("outcome", "select", "支持、解释说明或不予支持", options=labels.OUTCOMES)
NOTIFIED = Field("notified_at", "datetime", "必填：告知信访人的时间（北京时间），不早于办理时间")

STEP_FORMS: dict[str, StepForm] = {
    "route": StepForm(
        "转送交办",
        "交办本单位或其他单位的处理机构；处理机构留空则转送到该单位，由其再交办。"
        "须在收到后15日内办理。",
        "route",
        [
            Field("unit_code", "text", UNIT_HINT + "：承办单位"),
            Field("body", "text", "如 民政、司法、综治；留空为转送", required=False),
            _text("reason", "可空：交办意见", required=False),
            AT,
        ],
    ),
    "object": StepForm(
        "提出异议（不属本机构职责）",
        "交办后5个工作日内，可说明不属本机构职责，事项退回交办单位重新交办。",
        "object",
        [_text("reason", "必填：为什么不属本机构职责"), AT],
    ),
    "accept": StepForm(
        "受理",
        "交办后15日内受理并告知信访人；受理后60日内答复。",
        "accept",
        [_text("reason", "必填：受理意见"), NOTIFIED, AT],
    ),
    "decline": StepForm(
        "不予受理",
        "说明理由并告知信访人应走的途径。",
        "decline",
        [
            _text("reason", "必填：不予受理的理由"),
            Field("proper_channel", "text", "如 诉讼、仲裁、行政复议", required=False),
            NOTIFIED,
            AT,
        ],
        danger=True,
    ),
    "extend": StepForm(
        "延长办理期限",
        "办理答复期限可经处理机构负责人批准延长一次，最多30日，并告知信访人。",
        "extend",
        [Field("days", "number", "1至30天"), _text("reason", "必填：延期理由"), AT],
    ),
    "reply": StepForm(
        "答复意见",
        "受理后60日内（延期的，延长期限内）出具答复意见。",
        "reply",
        [OUTCOME, _text("text", "必填：答复意见书内容"), AT],
    ),
    "mediation": StepForm(
        "记录调解",
        "办理中的人民调解、行政调解、司法调解或联合调解。",
        "steps",
        [
            Field("mediation", "select", "调解类型", options=labels.MEDIATIONS),
            _text("note", "必填：调解情况"),
            AT,
        ],
        note="mediation",
    ),
    "agent": StepForm(
        "记录代理员代办",
        "信访代理员代信访人办理的事项。",
        "steps",
        [_text("note", "必填：代办情况"), AT],
        note="agent",
    ),
    "rate": StepForm(
        "记录信访人评价",
        "答复后，信访人在评价期内对答复意见作出评价。",
        "rate",
        [Field("rating", "select", "满意、基本满意或不满意", options=labels.RATINGS), AT],
    ),
    "review-request": StepForm(
        "申请复查（复核）",
        "答复后30日内，信访人可请求上一级复查；复查意见作出后30日内，可请求再上一级复核。",
        "review-request",
        [_text("reason", "可空：信访人的请求", required=False), AT],
    ),
    "review": StepForm(
        "复查（复核）意见",
        "本局为复查（复核）机关：收到请求后30日内答复。复核意见为终局。",
        "review",
        [OUTCOME, _text("text", "必填：复查（复核）意见内容"), AT],
    ),
    "supervision": StepForm(
        "督办",
        "事项有逾期未办的环节：上级信访局可督办。",
        "steps",
        [_text("note", "必填：督办意见"), AT],
        note="supervision",
    ),
    "close": StepForm(
        "终结",
        "复核后、申请复查（复核）期限届满未申请、或不予受理后，可终结。同一事项不再受理。",
        "close",
        [_text("reason", "可空：终结说明", required=False), AT],
        danger=True,
    ),
}


def _values(fields: list[Field], form: dict[str, str]) -> dict[str, Any]:
    """The fields as the service takes them: empty optional ones left out, numbers as
    numbers where they are, times as Beijing time; anything else as typed, to be refused."""
    found: dict[str, Any] = {}
    for spec in fields:
        value = form.get(spec.name, "").strip()
        if value == "" and (not spec.required or spec.kind in ("datetime", "select")):
            continue
        if spec.kind == "number":
            found[spec.name] = number_or_text(value)
        elif spec.kind == "datetime":
            found[spec.name] = beijing_time(value)
        else:
            found[spec.name] = value
    return found


def registration_of(form: dict[str, str], *, case_id: str) -> dict[str, Any]:
    return {"case_id": case_id} | _values(REGISTRATION, form)


def step_of(action: str, form: dict[str, str]) -> dict[str, Any]:
    """A step's body: a routing names its target, a refusal the proper channel, a note its
    kind."""
    spec = STEP_FORMS[action]
    body = _values(spec.fields, form)
    if action == "route":
        target = {"unit_code": body.pop("unit_code", ""), "body": body.pop("body", None)}
        body["to"] = target
    if "proper_channel" in body:
        body["channel"] = body.pop("proper_channel")
    if spec.note:
        body["kind"] = spec.note
    return body


# Where the service's field names are another name on the form.
FORM_NAMES = {"to.unit_code": "unit_code", "to": "unit_code", "to.body": "body"}


def case_errors(
    errors: list[dict[str, Any]] | None, *, detail: str, action: str | None = None
) -> dict[str, str]:
    """The cases service's refusals by field of the form (a step's, or without `action` the
    registration's), in Chinese; what names no field of it under ''."""
    shown = {f.name for f in (STEP_FORMS[action].fields if action else REGISTRATION)}
    found: dict[str, str] = {}
    for error in refusals_of(errors):
        name = FORM_NAMES.get(error.field or "", error.field or "")
        if action == "decline" and name == "channel":
            name = "proper_channel"
        key = name if name in shown and not error.last_day else ""
        message = _message(error, name, detail)
        found[key] = f"{found[key]}；{message}" if key in found else message
    return found


def _message(error: Refusal, name: str, detail: str) -> str:
    if error.last_day:
        return f"已过期限，没有办成：最后一天是 {error.last_day}"
    if error.type is None:
        return _checked(name, detail)
    if error.type == "string_pattern_mismatch" and name != "unit_code":
        return "含有不允许的字符"
    if error.type == "uuid_parsing":
        return "登记表编号无效，请重新打开登记表"
    return labels.field_message(error)


def _checked(name: str, detail: str) -> str:
    """A refusal of the service's own checks, which name the field and say why in `detail`."""
    if name == "unit_code":
        if "unknown unit" in detail:
            return "单位登记册中没有这个单位代码"
        return "事项已在这个单位，不能转送给它自己"
    if name == "body":
        return "该单位没有这个处理机构（请核对单位代码和机构名称）"
    if name == "days":
        most = re.findall(r"\d+", detail)
        return f"延长天数应为 1 至 {most[-1] if most else 30} 天"
    if name in ("received_at", "at") and "future" in detail:
        return "不能晚于现在"
    if name == "at":
        return "不能早于这一事项的上一步办理时间"
    if name == "notified_at" and "before" in detail:
        return "告知时间不能早于办理时间"
    if name in ("outcome", "rating", "mediation"):
        return "请从列表中选择"
    return "此项必填"
