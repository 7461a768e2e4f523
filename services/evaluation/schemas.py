"""What the evaluation API returns (the public contract of docs/api.md)."""

from datetime import date
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, Field


class EffectState(StrEnum):
    pending = "pending"
    applied = "applied"
    voided = "voided"
    refused = "refused"
    dead_lettered = "dead_lettered"


class CountsAgainstOut(BaseModel):
    unit_code: str = Field(examples=["340722100201"])
    period: str = Field(description="A campaign period, or `rolling`", examples=["2018"])
    criteria: list[str] = Field(
        description="The criteria the event meets at this unit: `skip_level`, "
        "`non_reception_site`, `collective`, `incident`",
        examples=[["collective"]],
    )


class Indicator(StrEnum):
    screening_meetings = "screening_meetings"
    satisfaction = "satisfaction"


class CountsTowardOut(BaseModel):
    unit_code: str = Field(examples=["340722100000"])
    period: str = Field(description="A campaign period, or `rolling`", examples=["2018"])
    indicator: Indicator = Field(
        description="`screening_meetings` (a meeting, at its own unit) or `satisfaction` (a "
        "rating, at each unit of its chain)"
    )
    slot: date | None = Field(
        None, description="A meeting's slot: the first day of the week, half-month or month"
    )


class DisputeRefOut(BaseModel):
    dispute_id: UUID
    state: str = Field(
        description="filed, decided, review_requested, reviewed or withdrawn (cases service)"
    )


class EffectOut(BaseModel):
    event_id: UUID
    state: EffectState = Field(
        description="A counted event: `applied` or `voided`. A correction: `pending` while its "
        "target has not arrived, then `applied` or `refused`. Either: `dead_lettered` when "
        "evaluation could not apply it at all."
    )
    reason: str | None = Field(
        None,
        description="Why it was refused or dead-lettered, or which correction (or upheld "
        "dispute) voided it or moved it where it counts now",
    )
    counts_against: list[CountsAgainstOut] = Field(
        description="Every unit and period the event counts against now, with the criteria; "
        "empty for corrections, work records and events that meet no criterion"
    )
    counts_toward: list[CountsTowardOut] = Field(
        default_factory=list,
        description="For a work record (screening meeting, satisfaction rating): every unit "
        "and period whose indicators it counts toward now",
    )
    dispute_until: date | None = Field(
        None,
        description="For a counting event: the last day (Asia/Shanghai) its unit may dispute "
        "it, 5 working days after the notice; null when the working-day calendar does not "
        "cover the days it needs yet (see `dispute_until_reason`). Absent for other events",
    )
    dispute_until_reason: str | None = Field(
        None, description="Why `dispute_until` is null for a counting event"
    )
    disputes: list[DisputeRefOut] | None = Field(
        None,
        description="For a counting event: its disputes, by id. An upheld one acts as a "
        "correction by the deciding bureau: `reason` then names the dispute",
    )
