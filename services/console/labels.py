"""The Chinese words of the pages: levels, criteria, event types and their fields, warning
kinds, application and dispute states, and what a refused field means in the desk's words."""

import re
from datetime import date

from services.console.clients.http import Refusal
from services.console.clients.reporting import Criteria
from shared.case_rates import RATE_LABELS
from shared.levels import LEVEL_NAMES, Level

LEVEL_TITLES = {"county": "三无县", "township": "三无乡镇", "village": "三无村（居）"}
DESTINATIONS = {
    "village": "村（居）",
    "township": "乡镇",
    "county": "县",
    "city": "市",
    "province": "省",
    "national": "进京（国家）",
}
CRITERIA = {
    "skip_level": "越级上访",
    "non_reception_site": "非接待场所",
    "collective": "集体上访",
    "incident": "极端事件或负面舆情",
}
EVENT_TYPES = {
    "petition_visit": "上访",
    "incident": "极端恶性事件",
    "public_opinion": "负面舆情",
    "screening_meeting": "排查调处例会",
    "satisfaction_rating": "群众点评",
    "event_voided": "核减",
    "event_reattributed": "改属地",
}
INCIDENT_KINDS = {
    "self_harm": "自伤自残",
    "violence": "暴力行为",
    "mass_incident": "群体性事件",
    "other": "其他",
}
RATINGS = {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}
RATING_SOURCES = {
    "petitioner": "信访群众",
    "third_party": "第三方考评",
    "representative": "两代表一委员、居民代表",
}
EFFECT_STATES = {
    "pending": "待评定",
    "applied": "已计入",
    "voided": "已核减",
    "refused": "未生效",
    "dead_lettered": "无法评定",
}
WARNING_KINDS = {
    "near_threshold": "接近集体访人数",
    "repeat_petitioner": "重复访",
    "rising": "上访上升",
    "case_due_soon": "信访事项临期",
    "case_overdue": "信访事项超期",
}
ROLES = {
    "desk": "登记窗口",
    "reader": "查阅",
    "bureau": "信访局",
    "handler": "处理机构",
    "admin": "管理员",
}
APPLICATION_STATES = {
    "draft": "草稿",
    "submitted": "已申报，待市初审",
    "reviewed": "已初审，待省命名",
    "decided": "已办结",
}
UNIT_STATES = {
    "proposed": "拟申报",
    "submitted": "已申报",
    "recommended": "已推荐",
    "returned": "已退回",
    "awarded": "已命名",
    "rejected": "未命名",
    "revoked": "已摘牌",
}
TITLE_STATES = {"held": "保持", "at_risk": "有风险（已预警）", "revoked": "已摘牌"}
STEP_KINDS = {
    "created": "创建申报",
    "submitted": "提交申报",
    "approved": "市初审通过（推荐）",
    "returned": "市初审退回",
    "awarded": "省命名",
    "rejected": "省不予命名",
    "flagged": "动态预警（不再三无）",
    "flag_cleared": "预警解除",
    "revoked": "摘牌",
}
# Why the applications service refused a unit or a decision, in the bureau's words.
REFUSALS = {
    "not_eligible": "该单位当前不是三无，不能申报",
    "already_applied": "该单位已在本考核期的另一份申报中",
    "duplicate": "重复列出",
    "unknown_unit": "单位登记册中没有这个单位",
    "outside_county": "不是本县的单位",
    "not_campaign_level": "只能申报县（区）、乡镇（街道）或村（居）",
    "not_in_application": "不是这份申报中的单位",
    "wrong_state": "该单位当前状态不能这样办理（可能已办理过）",
    "flagged": "该单位已被动态预警（不再三无），不能通过或命名",
    "outside_window": "当前不在申报时间窗口内",
    "period": "这个考核期不能申报（尚未开始，或为滚动期）",
}
# 异议: the grounds a unit disputes a counted event on, the bureau's decisions, the states a
# dispute passes through and the steps that move it.
GROUNDS = {
    "not_ours": "不属本单位",
    "facts": "事实不符",
    "duplicate": "重复上报",
    "other": "其他",
}
DISPUTE_DECISIONS = {
    "uphold_void": "维持异议并核销",
    "uphold_reattribute": "维持异议并改属地",
    "reject": "驳回",
}
DISPUTE_STATES = {
    "filed": "已提出，待决定",
    "decided": "已决定",
    "review_requested": "已申请复核，待复核",
    "reviewed": "已复核（终局）",
    "withdrawn": "已撤回",
}
DISPUTE_STEPS = {
    "filed": "提出异议",
    "decided": "决定",
    "review_requested": "申请复核",
    "reviewed": "复核（终局）",
    "withdrawn": "撤回异议",
}
DISPUTE_FIELDS = {
    "grounds": "异议理由",
    "proposed_unit": "应属单位代码",
    "duplicate_of": "重复的事件编号",
    "statement": "陈述",
    "decision": "决定",
    "new_unit": "新属地单位代码",
    "reason": "理由",
}
# Why the cases service refused a field of a dispute, by the message it gives.
DISPUTE_REFUSALS = {
    "not a counting event": "只有计入考核的事件（上访、极端恶性事件、负面舆情）可以提出异议",
    "required for these grounds": "以这一理由提出异议时必须填写",
    "unknown unit": "单位登记册中没有这个单位代码",
}

# 信访事项: how a case came in, the states it passes through, the steps that move it, its
# clocks (each limit, and how it stands), the reply's outcome, mediation kinds and its rates.
CHANNELS = {"visit": "来访", "letter": "来信", "phone": "来电", "online": "网上信访"}
CASE_STATES = {
    "registered": "已登记，待转送交办",
    "routed": "已交办，待受理",
    "accepted": "已受理，办理中",
    "declined": "不予受理",
    "replied": "已答复",
    "review_requested": "已申请复查（复核），待答复",
    "closed": "已终结",
    "repeat": "重复信访（随原事项办理）",
    "refused": "重复信访（原事项已终结，不予受理）",
}
CASE_STEPS = {
    "registered": "登记",
    "routed": "交办",
    "forwarded": "转送",
    "objected": "提出异议（不属职责）",
    "accepted": "受理并告知",
    "declined": "不予受理并告知",
    "extended": "延长办理期限",
    "mediated": "调解",
    "agent": "代理员代办",
    "supervised": "督办",
    "replied": "答复意见",
    "rated": "信访人评价",
    "review_requested": "申请复查（复核）",
    "reviewed": "复查（复核）意见",
    "closed": "终结",
}
CLOCK_NAMES = {
    "route": "转送交办（15日）",
    "object": "异议期（5个工作日）",
    "accept": "受理告知（15日）",
    "reply": "办理答复（60日）",
    "rating": "评价期",
    "review_request": "申请复查（复核）期（30日）",
    "review": "复查（复核）答复（30日）",
}
CLOCK_STATES = {
    "running": "计时中",
    "met": "按期完成",
    "late": "超期完成",
    "overdue": "已逾期",
    "lapsed": "已过期（未使用）",
}
OUTCOMES = {"support": "支持", "explain": "解释说明", "reject": "不予支持"}
MEDIATIONS = {
    "people": "人民调解",
    "administrative": "行政调解",
    "judicial": "司法调解",
    "joint": "联合调解",
}
REVIEW_LEVELS = {"review": "复查", "reexamination": "复核"}
CASE_RATES = {name.value: words for name, words in RATE_LABELS.items()}
# The handling bodies units commonly have (the service checks the unit has the one named).
BODIES = ("综治", "维稳", "司法", "民政", "信访", "人社", "自然资源")
CASE_FIELDS = {
    "unit_code": "单位代码",
    "received_at": "收到时间",
    "channel": "信访形式",
    "category": "问题类别",
    "petitioner_ref": "信访人身份证号或登记号",
    "headcount": "人数",
    "summary": "诉求摘要",
    "body": "处理机构",
    "reason": "理由",
    "notified_at": "告知信访人时间",
    "days": "延长天数",
    "outcome": "答复意见",
    "text": "答复内容",
    "rating": "评价结果",
    "mediation": "调解类型",
    "note": "情况说明",
    "proper_channel": "应走的途径",
    "at": "办理时间",
}

FIELD_NAMES = {
    "unit_code": "单位代码",
    "occurred_at": "发生时间",
    "destination_level": "去向",
    "headcount": "人数",
    "skip_level": "越级",
    "non_reception_site": "非接待场所",
    "law_related": "涉法涉诉",
    "category": "问题类别",
    "petitioner_ref": "来访人登记号",
    "kind": "事件类型",
    "summary": "情况摘要",
    "platform": "发布平台",
    "attendees": "参会人数",
    "disputes_found": "排查矛盾纠纷数",
    "disputes_resolved": "化解数",
    "rating": "评价结果",
    "source": "评价来源",
    "matter_ref": "事项编号",
    "event_id": "事件编号",
    "type": "登记类型",
}

_BY_TYPE = {
    "missing": "此项必填",
    "int_parsing": "请填写整数",
    "int_from_float": "请填写整数",
    "int_type": "请填写整数",
    "enum": "请从列表中选择",
    "literal_error": "请从列表中选择",
    "datetime_parsing": "请填写正确的日期和时间",
    "datetime_from_date_parsing": "请填写正确的日期和时间",
    "datetime_type": "请填写正确的日期和时间",
    "timezone_aware": "请填写正确的日期和时间",
    "string_too_short": "此项不能为空",
    "string_pattern_mismatch": "单位代码应为12位数字",
    "bool_parsing": "请勾选或不勾选",
    "unit": "单位登记册中没有这个单位代码",
    "unit_level": "只能登记县（区）、乡镇（街道）或村（居）的事件",
    "destination_below_unit": "去向不能低于该单位自身的层级",
    "future": "发生时间不能晚于现在",
    "extra_forbidden": "不接受此项",
    "uuid_parsing": "事件编号无效，请重新打开表单",
}


def _number_in(message: str) -> str:
    found = re.search(r"-?\d+", message)
    return found.group(0) if found else ""


def field_message(error: Refusal) -> str:
    """A refused field, in the desk's words (the API's English message as a last resort)."""
    kind = error.type or ""
    message = error.message or ""
    field = error.field or ""
    if kind in ("greater_than_equal", "greater_than"):
        return f"不能小于 {_number_in(message)}"
    if kind in ("less_than_equal", "less_than"):
        return f"不能大于 {_number_in(message)}"
    if kind == "string_too_long":
        return f"不能超过 {_number_in(message)} 个字"
    if kind == "value_error" and field == "disputes_resolved":
        return "化解数不能超过排查矛盾纠纷数"
    if kind == "value_error" and "NUL" in message:
        return "含有不允许的字符"
    return _BY_TYPE.get(kind, f"填写有误（{message}）" if message else "填写有误")


def level_name(level: str) -> str:
    """A level in Chinese, given as a `Level` or as its value."""
    return LEVEL_NAMES[Level(level)] if level in LEVEL_NAMES else str(level)


def not_eligible_reason(batches: Criteria, people: Criteria) -> str:
    """Why a unit is not eligible, as the eligible list's export words it: visits in batches
    (批) and people (人次), incidents and negative public opinion in events (起)."""
    parts = []
    for criterion, words in CRITERIA.items():
        count = getattr(batches, criterion)
        if count and criterion == "incident":
            parts.append(f"{words}{count}起")
        elif count:
            parts.append(f"{words}{count}批{getattr(people, criterion)}人次")
    return "；".join(parts) or "有计入事件"


def percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.1f}%"


def dispute_window(until: date | None, days_left: int | None) -> str:
    """A counting event's last day to dispute it, as of today."""
    if until is None or days_left is None:
        return "异议截止日暂不能确定（工作日历尚未覆盖）"
    if days_left < 0:
        return f"已过异议期（{until} 截止）"
    if days_left == 0:
        return f"异议截止 {until}（今天截止）"
    return f"异议截止 {until}（剩 {days_left} 天）"


def days_left(days: int | None) -> str:
    """A running clock's days to its last day, as of today."""
    if days is None:
        return "—"
    if days < 0:
        return f"逾期 {-days} 天"
    return "今天到期" if days == 0 else f"剩 {days} 天"
