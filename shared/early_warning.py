"""Early warnings (社会矛盾排查预警, docs/domain.md section 8): the rules as campaign data, and a
warning as published on the warning topic.

Evaluation raises and clears warnings from the events it applies, the cases service from the
clocks of cases (`case_due_soon`, `case_overdue`, with no events); each change is one message
keyed by the warning's id with the whole warning as value, its version one higher than the
last. Reporting keeps the latest version per warning and serves the changes as a feed.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.levels import Level


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarningKind(StrEnum):
    near_threshold = "near_threshold"  # 接近集体访人数
    repeat_petitioner = "repeat_petitioner"  # 重复访
    rising = "rising"  # 上升趋势
    # Raised by the cases service from a case's clocks on the unit the case is with.
    case_due_soon = "case_due_soon"  # 临期: a duty due within 3 days
    case_overdue = "case_overdue"  # 超期: a duty past its last day


class NearThresholdRule(_Strict):
    """A visit below a level's collective threshold by at most `margin[level]` people, to a
    destination that level counts, warns every unit of that level it counts towards."""

    margin: dict[Level, int] = Field(
        default_factory=lambda: {Level.county: 10, Level.township: 2, Level.village: 2}
    )


class RepeatPetitionerRule(_Strict):
    """`visits` or more visits of one petitioner (by hashed reference) within `days` days in
    one county warn the unit of the latest visit."""

    visits: int = Field(3, ge=2)
    days: int = Field(90, ge=1)


class RisingRule(_Strict):
    """Visits to a unit's subtree in the last `recent_days` reach at least `minimum` and at
    least `factor` times the monthly average of the `baseline_days` before."""

    recent_days: int = Field(30, ge=1)
    baseline_days: int = Field(90, ge=1)
    minimum: int = Field(5, ge=1)
    factor: float = Field(2.0, gt=0)


class WarningRules(_Strict):
    near_threshold: NearThresholdRule = NearThresholdRule()
    repeat_petitioner: RepeatPetitionerRule = RepeatPetitionerRule()
    rising: RisingRule = RisingRule()


class EarlyWarning(_Strict):
    schema_version: int = 1
    warning_id: UUID = Field(description="the same for the same kind, unit and cause")
    kind: WarningKind
    unit_code: str
    raised_at: datetime
    cleared_at: datetime | None = None
    event_ids: list[str] = Field(description="the events that raised it")
    detail: dict[str, Any] = Field(default_factory=dict)
    version: int

    @property
    def key(self) -> bytes:
        return str(self.warning_id).encode()
