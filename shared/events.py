"""Petition events: one pydantic model per type, joined in a discriminated union on `type`.

These are the payloads front desks and other systems post (domain.md section 2). What crosses
Kafka is an `EventRecord`: the accepted event plus who accepted it and when.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from shared.levels import Destination

UnitCode = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{12}$"), Field(examples=["340722100201"])
]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Summary = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

MAX_HEADCOUNT = 100_000


class EventType(StrEnum):
    petition_visit = "petition_visit"
    incident = "incident"
    public_opinion = "public_opinion"
    event_voided = "event_voided"
    event_reattributed = "event_reattributed"


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID = Field(description="Chosen by the sender; the idempotency key.")
    unit_code: UnitCode = Field(description="The unit the matter is attributed to (属地).")
    occurred_at: AwareDatetime = Field(description="RFC 3339 with offset.")


class PetitionVisit(_Event):
    """上访: people came in person to some level's reception, or were found elsewhere."""

    type: Literal["petition_visit"]
    destination_level: Destination
    headcount: int = Field(ge=1, le=MAX_HEADCOUNT)
    skip_level: bool = Field(False, description="越级: the recording desk judged levels bypassed.")
    non_reception_site: bool = Field(
        False, description="非接待场所: found at a non-reception place."
    )
    law_related: bool = Field(False, description="涉法涉诉; counted like any other visit.")
    category: ShortText | None = None
    petitioner_ref: ShortText | None = Field(
        None, description="Stored only as a keyed hash, never as sent."
    )


class IncidentKind(StrEnum):
    self_harm = "self_harm"
    violence = "violence"
    mass_incident = "mass_incident"
    other = "other"


class Incident(_Event):
    """因信访问题引发的极端恶性事件."""

    type: Literal["incident"]
    kind: IncidentKind
    summary: Summary


class PublicOpinion(_Event):
    """舆论负面炒作."""

    type: Literal["public_opinion"]
    platform: ShortText
    summary: Summary


class EventVoided(_Event):
    """A counted event found wrong on review (核查认定/核减)."""

    type: Literal["event_voided"]
    target_event_id: UUID
    reason: Reason


class EventReattributed(_Event):
    """A counted event that belongs to another unit (退回/改属地)."""

    type: Literal["event_reattributed"]
    target_event_id: UUID
    new_unit_code: UnitCode
    reason: Reason


Event = Annotated[
    PetitionVisit | Incident | PublicOpinion | EventVoided | EventReattributed,
    Field(discriminator="type"),
]
Correction = EventVoided | EventReattributed
EVENT_TYPES: frozenset[str] = frozenset(EventType)

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


class EventRecord(BaseModel):
    """An accepted event as it travels on the petition-event topic (schema version 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    event: Event
    accepted_at: datetime
    key_id: str

    @property
    def event_id(self) -> UUID:
        return self.event.event_id


def unit_codes_of(event: Event) -> tuple[str, ...]:
    """Every unit an event names: its own and, for a re-attribution, the new one."""
    if isinstance(event, EventReattributed):
        return (event.unit_code, event.new_unit_code)
    return (event.unit_code,)
