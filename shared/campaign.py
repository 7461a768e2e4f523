"""The campaign file: periods, targets and the rule table (docs/domain.md sections 3-5), as data.

Evaluation applies the rules; reporting names the periods and compares with the targets. The
file is checked when loaded; a bad file stops the service with a message naming the line.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.config import clock_offset
from shared.early_warning import WarningRules
from shared.indicators import WorkRecordRules
from shared.levels import CAMPAIGN_LEVELS, Destination, Level
from shared.status import ROLLING

SHANGHAI = ZoneInfo("Asia/Shanghai")
LAST_YEAR = 2100  # calendar-year periods are generated up to this year at most


class Comparison(StrEnum):
    ge = "ge"  # 包含: headcount >= threshold
    gt = "gt"  # 超过: headcount > threshold


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectiveRule(_Strict):
    threshold: int = Field(ge=1)
    comparison: Comparison
    destinations: frozenset[Destination]

    def met_by(self, headcount: int) -> bool:
        if self.comparison is Comparison.ge:
            return headcount >= self.threshold
        return headcount > self.threshold


class LevelRules(_Strict):
    skip_level_destinations: frozenset[Destination]
    non_reception_site: bool
    collective: CollectiveRule
    incidents: bool


class PeriodSpec(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    start: date
    end: date

    @field_validator("id")
    @classmethod
    def _not_rolling(cls, value: str) -> str:
        if value == ROLLING:
            raise ValueError("'rolling' is always defined and cannot be listed")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> "PeriodSpec":
        if self.end < self.start:
            raise ValueError(f"period {self.id} ends before it starts")
        return self


MONTH_DAY = r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


class ApplicationWindow(_Strict):
    """When applications for the title are accepted, every year (Asia/Shanghai, both days
    included); the plan's is December. A window may wrap over New Year (12-15 to 01-15)."""

    start_month_day: str = Field("12-01", pattern=MONTH_DAY)
    end_month_day: str = Field("12-31", pattern=MONTH_DAY)

    @field_validator("start_month_day", "end_month_day")
    @classmethod
    def _real_day(cls, value: str) -> str:
        month, day = map(int, value.split("-"))
        date(2000, month, day)  # a leap year: 02-29 is a day; 02-30 raises ValueError
        return value

    def is_open(self, today: date) -> bool:
        day = f"{today.month:02d}-{today.day:02d}"
        if self.start_month_day <= self.end_month_day:
            return self.start_month_day <= day <= self.end_month_day
        return day >= self.start_month_day or day <= self.end_month_day

    def describe(self) -> str:
        return f"{self.start_month_day} to {self.end_month_day} (Asia/Shanghai)"


class ApplicationRules(_Strict):
    window: ApplicationWindow = ApplicationWindow()


class Limit(_Strict):
    """A limit's length (docs/domain.md section 9), in working days or in calendar days (then
    a last day off moves to the next working day)."""

    days: int = Field(ge=1, le=366)
    working_days: bool


# 信访工作条例 第二十三条: 5 working days to object to a matter sent to a body.
DISPUTE_WINDOW = Limit(days=5, working_days=True)


def _days(days: int) -> Limit:
    return Limit(days=days, working_days=False)


class CaseLimits(_Strict):
    """The clocks of a case (信访工作条例, 2022): each limit from the step that starts it."""

    route: Limit = _days(15)  # from receipt, to route or forward it (第二十二条)
    object: Limit = DISPUTE_WINDOW  # from routing, for the body to object (第二十三条)
    accept: Limit = _days(15)  # from routing, to accept or decline with notice (第二十四条)
    reply: Limit = _days(60)  # from acceptance, to reply (第三十二条)
    extension_days: int = Field(30, ge=0, le=366)  # the most one extension adds
    rating: Limit = _days(15)  # from the reply, for the petitioner's rating
    review_request: Limit = _days(30)  # from a reply or review, to ask for 复查 or 复核
    review: Limit = _days(30)  # from the request, to answer it (第三十五条)


class LimitRules(_Strict):
    """The limits of disputes and cases, counted on the working-day calendar."""

    dispute: Limit = DISPUTE_WINDOW  # from the notice of a counting event
    review_request: Limit = DISPUTE_WINDOW  # from the decision of a dispute
    cases: CaseLimits = CaseLimits()


class CampaignFile(_Strict):
    id: str = Field(min_length=1)
    name: str
    periods: list[PeriodSpec]
    calendar_years_from: int | None = Field(None, ge=1990, le=LAST_YEAR)
    targets: dict[Level, float]
    rules: dict[Level, LevelRules]
    work_records: WorkRecordRules = WorkRecordRules()
    warnings: WarningRules = WarningRules()
    applications: ApplicationRules = ApplicationRules()
    limits: LimitRules = LimitRules()

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: dict[Level, float]) -> dict[Level, float]:
        for level, share in value.items():
            if level not in CAMPAIGN_LEVELS:
                raise ValueError(f"{level} is not a campaign level (county, township, village)")
            if not 0 <= share <= 1:
                raise ValueError(f"target for {level} must be a share between 0 and 1")
        return value

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: dict[Level, LevelRules]) -> dict[Level, LevelRules]:
        missing = set(CAMPAIGN_LEVELS) - set(value)
        extra = set(value) - set(CAMPAIGN_LEVELS)
        if missing or extra:
            raise ValueError(
                f"rules must name exactly county, township and village (missing {sorted(missing)}, "
                f"not campaign levels {sorted(extra)})"
            )
        return value


@dataclass(frozen=True, slots=True)
class Period:
    """A named assessment period: [starts_at, ends_at) in absolute time."""

    id: str
    start: date
    end: date  # inclusive, Asia/Shanghai

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time.min, SHANGHAI)

    @property
    def ends_at(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), time.min, SHANGHAI)

    def contains(self, moment: datetime) -> bool:
        return self.starts_at <= moment < self.ends_at


def calendar_year(year: int) -> Period:
    return Period(str(year), date(year, 1, 1), date(year, 12, 31))


def rolling_window(now: datetime) -> tuple[datetime, datetime]:
    """The trailing 12 months ending now: (now minus 12 calendar months in Shanghai, now]."""
    local = now.astimezone(SHANGHAI)
    try:
        start = local.replace(year=local.year - 1)
    except ValueError:  # 29 February
        start = local.replace(year=local.year - 1, day=28)
    return start, now


def in_rolling_window(moment: datetime, now: datetime) -> bool:
    start, end = rolling_window(now)
    return start < moment <= end


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    periods: tuple[Period, ...]  # named periods, not rolling
    targets: dict[Level, float]
    rules: dict[Level, LevelRules]
    calendar_years_from: int | None = None  # one period per calendar year from this one
    work_records: WorkRecordRules = dataclasses.field(default_factory=WorkRecordRules)
    warnings: WarningRules = dataclasses.field(default_factory=WarningRules)
    applications: ApplicationRules = dataclasses.field(default_factory=ApplicationRules)
    limits: LimitRules = dataclasses.field(default_factory=LimitRules)

    def as_of(self, today: date) -> "Campaign":
        """The campaign on `today` (Asia/Shanghai): a calendar-year period exists from the
        first day of its year on."""
        first = self.calendar_years_from
        if first is None:
            return self
        generated = {str(year) for year in range(first, LAST_YEAR + 1)}
        kept = [p for p in self.periods if p.id not in generated or int(p.id) <= today.year]
        have = {p.id for p in kept}
        added = [calendar_year(y) for y in range(first, today.year + 1) if str(y) not in have]
        if not added and len(kept) == len(self.periods):
            return self
        return dataclasses.replace(self, periods=(*kept, *added))

    def period(self, period_id: str) -> Period | None:
        return next((p for p in self.periods if p.id == period_id), None)

    def period_ids(self) -> list[str]:
        return [p.id for p in self.periods] + [ROLLING]

    def is_period(self, period_id: str) -> bool:
        return period_id == ROLLING or self.period(period_id) is not None

    def periods_containing(self, moment: datetime) -> list[Period]:
        return [p for p in self.periods if p.contains(moment)]

    def target(self, level: Level) -> float | None:
        return self.targets.get(level)


def system_now() -> datetime:
    """Now, as every service takes it: the system's clock moved by SANWU_CLOCK_OFFSET_SECONDS
    (test and local runs only)."""
    return datetime.now(UTC) + clock_offset()


class CurrentCampaign:
    """The campaign as it stands at the clock's time, for services that run across New Year:
    a calendar-year period appears at the first moment of its year (Asia/Shanghai) without a
    restart. `now` is the clock (tests move it instead of waiting)."""

    def __init__(self, campaign: Campaign, *, now: Callable[[], datetime] = system_now) -> None:
        self._base = campaign
        self._now = now
        self._campaign = campaign
        self._valid: tuple[datetime, datetime] | None = None  # [from, until) of `_campaign`

    def get(self) -> Campaign:
        now = self._now()
        if self._valid is None or not self._valid[0] <= now < self._valid[1]:
            today = now.astimezone(SHANGHAI).date()
            year = today.year
            self._campaign = self._base.as_of(today)
            self._valid = (
                datetime.combine(date(year, 1, 1), time.min, SHANGHAI),
                datetime.combine(date(year + 1, 1, 1), time.min, SHANGHAI),
            )
        return self._campaign


class CampaignFileError(Exception):
    pass


def _line_of(node: yaml.Node, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the YAML node at a pydantic error location (as deep as it goes)."""
    for index, key in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(key)), None)
            if pair is not None and loc[index + 1 : index + 2] == ("[key]",):
                return pair[0].start_mark.line + 1  # the key itself is wrong
            match = pair[1] if pair is not None else None
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            match = node.value[key]
        else:
            match = None
        if match is None:
            break
        node = match
    return node.start_mark.line + 1


class _DatesAsText(yaml.SafeLoader):
    """Leaves dates as text for pydantic to check, so `2018-02-30` is an error with a line
    rather than an exception from the YAML library."""


_DatesAsText.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _check_unique_ids(periods: list[Period], *, node: yaml.Node, source: str) -> None:
    """Ids are unique across listed and generated periods; the error names the listed line."""
    listed = len(_period_nodes(node))
    first: dict[str, int] = {}
    for index, period in enumerate(periods):
        if period.id not in first:
            first[period.id] = index
            continue
        at, how = (
            (index, "appears twice") if index < listed else (first[period.id], "is generated too")
        )
        line = _line_of(node, ("periods", at, "id"))
        raise CampaignFileError(f"{source}: line {line}: period id {period.id!r} {how}")


def _period_nodes(node: yaml.Node) -> list[yaml.Node]:
    periods = next((v for k, v in node.value if k.value == "periods"), None)
    return list(periods.value) if isinstance(periods, yaml.SequenceNode) else []


def parse(text: str, *, source: str = "campaign", today: date | None = None) -> Campaign:
    try:
        node = yaml.compose(text)
        data = yaml.load(text, Loader=_DatesAsText)
    except yaml.YAMLError as exc:
        raise CampaignFileError(f"{source}: not valid YAML: {exc}") from exc
    if node is None or not isinstance(data, dict):
        raise CampaignFileError(f"{source}: line 1: expected a mapping")
    try:
        spec = CampaignFile.model_validate(data)
    except ValidationError as exc:
        messages = [
            f"{source}: line {_line_of(node, tuple(e['loc']))}: "
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors()
        ]
        raise CampaignFileError("\n".join(messages)) from exc
    listed = [Period(p.id, p.start, p.end) for p in spec.periods]
    first = spec.calendar_years_from
    # Every year the campaign will ever generate: a listed id may not collide with any.
    years = [] if first is None else [calendar_year(y) for y in range(first, LAST_YEAR + 1)]
    _check_unique_ids(listed + years, node=node, source=source)
    campaign = Campaign(
        spec.id,
        spec.name,
        tuple(listed),
        dict(spec.targets),
        dict(spec.rules),
        calendar_years_from=first,
        work_records=spec.work_records,
        warnings=spec.warnings,
        applications=spec.applications,
        limits=spec.limits,
    )
    return campaign.as_of(today or system_now().astimezone(SHANGHAI).date())


def load(path: Path, *, today: date | None = None) -> Campaign:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CampaignFileError(f"{path}: cannot read: {exc}") from exc
    return parse(text, source=str(path), today=today)
