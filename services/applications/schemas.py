"""What the applications API takes and returns (docs/api.md, "Applications"), and how the
service's records are rendered into it."""

from datetime import datetime
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from services.applications.records import Application, Step, Title
from services.applications.workflow import UnitState
from shared.events import NO_NUL, NO_NUL_SCHEMA, Reason, UnitCode
from shared.levels import Level
from shared.registry.cache import UnitRegistry

SelfEvaluation = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000),
    NO_NUL,
    NO_NUL_SCHEMA,
]
Rectification = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4_000),
    NO_NUL,
    NO_NUL_SCHEMA,
]
PeriodId = Annotated[str, StringConstraints(min_length=1, max_length=64), Field(examples=["2018"])]
MAX_UNITS = 1000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProposedUnitIn(_In):
    code: UnitCode
    self_evaluation: SelfEvaluation = Field(description="自评: the unit's self-evaluation")
    rectifications: list[Rectification] = Field(
        default_factory=list, max_length=100, description="整改: rectifications made"
    )


class ApplicationIn(_In):
    period: PeriodId
    units: list[ProposedUnitIn] = Field(min_length=1, max_length=MAX_UNITS)
    county_code: UnitCode | None = Field(
        None,
        description="The applying county: a county bureau's own scope (may be left out); "
        "required for an admin key",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "period": "2018",
                    "units": [
                        {
                            "code": "340722100201",
                            "self_evaluation": "全年无越级上访、无集体上访、无极端恶性事件",
                            "rectifications": ["建立矛盾纠纷排查台账"],
                        }
                    ],
                }
            ]
        },
    )


class ReviewDecisionIn(_In):
    code: UnitCode
    decision: Literal["approve", "return"]
    reason: Reason | None = Field(None, description="Required to return a unit")

    @model_validator(mode="after")
    def _reason_to_return(self) -> "ReviewDecisionIn":
        if self.decision == "return" and self.reason is None:
            raise ValueError("a return needs a reason")
        return self


class ReviewIn(_In):
    decisions: list[ReviewDecisionIn] = Field(min_length=1, max_length=MAX_UNITS)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "decisions": [
                        {"code": "340722100201", "decision": "approve"},
                        {"code": "340722100202", "decision": "return", "reason": "自评材料不全"},
                    ]
                }
            ]
        },
    )


class AwardDecisionIn(_In):
    code: UnitCode
    decision: Literal["award", "reject"]
    reason: Reason | None = Field(None, description="Required to reject a unit")

    @model_validator(mode="after")
    def _reason_to_reject(self) -> "AwardDecisionIn":
        if self.decision == "reject" and self.reason is None:
            raise ValueError("a rejection needs a reason")
        return self


class AwardIn(_In):
    decisions: list[AwardDecisionIn] = Field(min_length=1, max_length=MAX_UNITS)


class RevokeIn(_In):
    reason: Reason = Field(description="Why the title is revoked (摘牌)")


class FlagOut(BaseModel):
    since: datetime = Field(description="When the unit stopped being three-no")
    event_ids: list[str] = Field(description="The events that made it so")


def flag_of(since: datetime | None, event_ids: list[str] | None) -> FlagOut | None:
    return None if since is None else FlagOut(since=since, event_ids=event_ids or [])


def name_and_level(registry: UnitRegistry, code: str) -> tuple[str, Level]:
    """As the registry has them (a unit it no longer holds: no name, a village)."""
    ref = registry.get_cached(code)
    return (ref.name, ref.level) if ref else ("", Level.village)


class ApplicationUnitOut(BaseModel):
    code: str
    name: str
    level: Level
    state: Literal[
        "proposed", "submitted", "recommended", "returned", "awarded", "rejected", "revoked"
    ]
    self_evaluation: str
    rectifications: list[str]
    evidence: dict[str, Any] | None = Field(
        description="Snapshotted at submission: the status (version, counts), cadence and "
        "satisfaction (null where not known), the case rates of the period (`case_rates`: "
        "each rate's numerator, denominator, rate and not_yet_due; null where the service asks "
        "no cases service), the self-evaluation"
    )
    decision_reason: str | None
    flag: FlagOut | None = Field(description="Set while the unit is not three-no")


class ApplicationOut(BaseModel):
    application_id: UUID
    county_code: str
    period: str
    state: Literal["draft", "submitted", "reviewed", "decided"]
    version: int = Field(description="Send it as If-Match to change the application")
    created_at: datetime
    updated_at: datetime
    units: list[ApplicationUnitOut]

    @classmethod
    def of(cls, application: Application, registry: UnitRegistry) -> Self:
        units = []
        for unit in application.units:
            name, level = name_and_level(registry, unit.unit_code)
            units.append(
                ApplicationUnitOut(
                    code=unit.unit_code,
                    name=name,
                    level=level,
                    state=unit.state.value,
                    self_evaluation=unit.self_evaluation,
                    rectifications=unit.rectifications,
                    evidence=unit.evidence,
                    decision_reason=unit.decision_reason,
                    flag=flag_of(unit.flag_since, unit.flag_event_ids),
                )
            )
        return cls(
            application_id=application.application_id,
            county_code=application.county_code,
            period=application.period,
            state=application.state.value,
            version=application.version,
            created_at=application.created_at,
            updated_at=application.updated_at,
            units=units,
        )


class ApplicationListOut(BaseModel):
    items: list[ApplicationOut]


class StepOut(BaseModel):
    step_id: int
    application_id: UUID
    county_code: str
    period: str
    unit_code: str | None
    action: Literal[
        "created",
        "submitted",
        "approved",
        "returned",
        "awarded",
        "rejected",
        "flagged",
        "flag_cleared",
        "revoked",
    ]
    key_id: str | None = Field(description="Who: null for the service's own flag steps")
    role: str | None
    scope_code: str | None
    reason: str | None
    detail: dict[str, Any]
    at: datetime

    @classmethod
    def of(cls, step: Step) -> Self:
        return cls.model_validate(step.message().model_dump())


class HistoryOut(BaseModel):
    items: list[StepOut]


class FeedPageOut(BaseModel):
    items: list[StepOut]
    next_cursor: str = Field(description="Pass it as `since` for the next pull")


class TitleUnitOut(BaseModel):
    code: str
    name: str
    level: Level
    parent_code: str | None


class TitleOut(BaseModel):
    unit: TitleUnitOut
    period: str
    state: Literal["held", "at_risk", "revoked"]
    application_id: UUID
    version: int = Field(description="The application's version: If-Match to revoke")
    reason: str | None = Field(description="Why it was revoked (or the award's reason)")
    flag: FlagOut | None

    @classmethod
    def of(cls, title: Title, registry: UnitRegistry) -> Self:
        """`at_risk` while the holder is flagged."""
        name, level = name_and_level(registry, title.unit_code)
        ref = registry.get_cached(title.unit_code)
        if title.state == UnitState.revoked:
            state: Literal["held", "at_risk", "revoked"] = "revoked"
        else:
            state = "at_risk" if title.flag_since is not None else "held"
        return cls(
            unit=TitleUnitOut(
                code=title.unit_code,
                name=name,
                level=level,
                parent_code=ref.parent_code if ref else None,
            ),
            period=title.period,
            state=state,
            application_id=title.application_id,
            version=title.version,
            reason=title.reason,
            flag=flag_of(title.flag_since, title.flag_event_ids),
        )


class TitlesOut(BaseModel):
    items: list[TitleOut]
