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


class EffectOut(BaseModel):
    event_id: UUID
    state: EffectState = Field(
        description="A counted event: `applied` or `voided`. A correction: `pending` while its "
        "target has not arrived, then `applied` or `refused`. Either: `dead_lettered` when "
        "evaluation could not apply it at all."
    )
    reason: str | None = Field(
        None, description="Why it was refused or dead-lettered, or which correction voided it"
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
