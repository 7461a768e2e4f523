"""Petition events: one pydantic model per type, joined in a discriminated union on `type`.

These are the payloads front desks and other systems post (docs/domain.md section 2). What crosses
Kafka is an `EventRecord`: the accepted event without its free text, plus who accepted it and
when.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)

from shared.levels import Destination

UnitCode = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{12}$"), Field(examples=["340722100201"])
]


def _refuse_nul(text: str) -> str:
    # PostgreSQL cannot store U+0000 in text or jsonb: refused here as bad input.
    if "\x00" in text:
        raise ValueError("text must not contain the NUL character (U+0000)")
    return text


NO_NUL = AfterValidator(_refuse_nul)
NO_NUL_SCHEMA = Field(json_schema_extra={"pattern": r"^[^\u0000]*$"})
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    NO_NUL,
    NO_NUL_SCHEMA,
]
Summary = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    NO_NUL,
    NO_NUL_SCHEMA,
]
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    NO_NUL,
    NO_NUL_SCHEMA,
]

MAX_HEADCOUNT = 100_000


class EventType(StrEnum):
    petition_visit = "petition_visit"
    incident = "incident"
    public_opinion = "public_opinion"
    event_voided = "event_voided"
    event_reattributed = "event_reattributed"
    screening_meeting = "screening_meeting"
    satisfaction_rating = "satisfaction_rating"


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID = Field(description="Chosen by the sender; the idempotency key.")
    unit_code: UnitCode = Field(description="The unit the matter is attributed to (属地).")
    occurred_at: AwareDatetime = Field(description="RFC 3339 with offset.")


class _Counting(_Event):
    """An event that counts against its unit, which may dispute it (domain section 10)."""

    reported_at: AwareDatetime | None = Field(
        None,
        description="When a higher level sent the report down (通报), not after acceptance; "
        "it can only shorten the time left to dispute the event.",
    )


class PetitionVisit(_Counting):
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


class Incident(_Counting):
    """因信访问题引发的极端恶性事件."""

    type: Literal["incident"]
    kind: IncidentKind
    summary: Summary


class PublicOpinion(_Counting):
    """舆论负面炒作."""

    type: Literal["public_opinion"]
    platform: ShortText
    summary: Summary


class ScreeningMeeting(_Event):
    """排查调处例会 held by the unit itself (县每月、乡镇每半月、村（居）每周一次)."""

    type: Literal["screening_meeting"]
    attendees: int = Field(ge=1, le=MAX_HEADCOUNT)
    disputes_found: int = Field(ge=0, le=MAX_HEADCOUNT)
    disputes_resolved: int = Field(ge=0, le=MAX_HEADCOUNT)
    summary: Summary | None = None

    # A field validator rather than a model validator, so that the error names the field.
    @field_validator("disputes_resolved")
    @classmethod
    def _resolved_within_found(cls, resolved: int, info: ValidationInfo) -> int:
        found = info.data.get("disputes_found")  # absent when itself invalid
        if found is not None and resolved > found:
            raise ValueError("disputes_resolved must not exceed disputes_found")
        return resolved


class Rating(StrEnum):
    satisfied = "satisfied"  # 满意
    basically_satisfied = "basically_satisfied"  # 基本满意
    dissatisfied = "dissatisfied"  # 不满意


class RatingSource(StrEnum):
    petitioner = "petitioner"  # 信访群众
    third_party = "third_party"  # 第三方考评
    representative = "representative"  # 两代表一委员、居民代表


class SatisfactionRating(_Event):
    """群众点评: a handled matter rated by the petitioner, a third party or a representative."""

    type: Literal["satisfaction_rating"]
    rating: Rating
    source: RatingSource
    matter_ref: ShortText | None = Field(
        None, description="Stored only as a keyed hash, never as sent."
    )


WorkRecord = ScreeningMeeting | SatisfactionRating


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


# One request example per event type, as a desk of 枞阳县 would post it (OpenAPI and /docs).
EXAMPLES: dict[EventType, dict[str, object]] = {
    EventType.petition_visit: {
        "event_id": "0b6f0c5e-6a53-4b52-9d5e-7a3c2d0b1f11",
        "type": "petition_visit",
        "unit_code": "340722100201",
        "occurred_at": "2018-06-03T09:30:00+08:00",
        "destination_level": "city",
        "headcount": 6,
        "skip_level": False,
        "non_reception_site": False,
        "law_related": False,
        "category": "土地征收",
        "petitioner_ref": "身份证号或来访登记号",
    },
    EventType.incident: {
        "event_id": "5d1c2f0e-3b8a-4c6e-9f2d-1a7b8c9d0e21",
        "type": "incident",
        "unit_code": "340722100202",
        "occurred_at": "2018-07-11T15:00:00+08:00",
        "kind": "self_harm",
        "summary": "因信访问题引发的极端事件：当事人在镇政府门前自伤。",
    },
    EventType.public_opinion: {
        "event_id": "8e4a6b2c-1d3f-4a5b-8c7d-9e0f1a2b3c41",
        "type": "public_opinion",
        "unit_code": "340722101000",
        "occurred_at": "2018-08-20T08:00:00+08:00",
        "platform": "微博",
        "summary": "有关拆迁补偿的帖子被大量转发并引发负面炒作。",
    },
    EventType.screening_meeting: {
        "event_id": "3c2d1e0f-9a8b-4c7d-8e6f-5a4b3c2d1e71",
        "type": "screening_meeting",
        "unit_code": "340722100201",
        "occurred_at": "2018-06-04T19:00:00+08:00",
        "attendees": 9,
        "disputes_found": 2,
        "disputes_resolved": 1,
        "summary": "村排查调处例会：排查矛盾纠纷2件，当场化解1件。",
    },
    EventType.satisfaction_rating: {
        "event_id": "4d3e2f1a-0b9c-4d8e-9f7a-6b5c4d3e2f81",
        "type": "satisfaction_rating",
        "unit_code": "340722100201",
        "occurred_at": "2018-06-20T11:00:00+08:00",
        "rating": "basically_satisfied",
        "source": "third_party",
        "matter_ref": "信访事项编号",
    },
    EventType.event_voided: {
        "event_id": "2f9b7d5e-4c3a-4b1d-8e6f-0a9b8c7d6e51",
        "type": "event_voided",
        "unit_code": "340722100201",
        "occurred_at": "2018-06-10T10:00:00+08:00",
        "target_event_id": "0b6f0c5e-6a53-4b52-9d5e-7a3c2d0b1f11",
        "reason": "核查认定：来访人员并非本村村民，不属实。",
    },
    EventType.event_reattributed: {
        "event_id": "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c61",
        "type": "event_reattributed",
        "unit_code": "340722100201",
        "occurred_at": "2018-06-12T16:30:00+08:00",
        "target_event_id": "0b6f0c5e-6a53-4b52-9d5e-7a3c2d0b1f11",
        "new_unit_code": "340722101201",
        "reason": "经核实，该事项属地为横埠镇所辖村，退回改属地。",
    },
}


Event = Annotated[
    PetitionVisit
    | Incident
    | PublicOpinion
    | ScreeningMeeting
    | SatisfactionRating
    | EventVoided
    | EventReattributed,
    Field(discriminator="type"),
]
Correction = EventVoided | EventReattributed
EVENT_TYPES: frozenset[str] = frozenset(EventType)

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


FREE_TEXT_FIELDS: frozenset[str] = frozenset({"summary", "reason", "category", "platform"})
"""What people wrote about a matter. Intake keeps it for a while and never publishes it: the
petition-event topic is kept forever, and no rule reads it."""

# An event as it travels on the topic: the posted model with its free text optional, since
# intake publishes none (records published before that still carry it, and still parse). Each
# is a subclass of the posted model, so `isinstance(event, Incident)` holds for it, and each
# accepts an instance of the posted model as well as JSON.
_RECORDED = ConfigDict(from_attributes=True)


class RecordedPetitionVisit(PetitionVisit):
    model_config = _RECORDED  # its only free text, category, is optional already


class RecordedIncident(Incident):
    model_config = _RECORDED
    summary: Summary | None = None  # type: ignore[assignment]


class RecordedPublicOpinion(PublicOpinion):
    model_config = _RECORDED
    platform: ShortText | None = None  # type: ignore[assignment]
    summary: Summary | None = None  # type: ignore[assignment]


class RecordedScreeningMeeting(ScreeningMeeting):
    model_config = _RECORDED  # its only free text, summary, is optional already


class RecordedSatisfactionRating(SatisfactionRating):
    model_config = _RECORDED


class RecordedEventVoided(EventVoided):
    model_config = _RECORDED
    reason: Reason | None = None  # type: ignore[assignment]


class RecordedEventReattributed(EventReattributed):
    model_config = _RECORDED
    reason: Reason | None = None  # type: ignore[assignment]


RecordedEvent = Annotated[
    RecordedPetitionVisit
    | RecordedIncident
    | RecordedPublicOpinion
    | RecordedScreeningMeeting
    | RecordedSatisfactionRating
    | RecordedEventVoided
    | RecordedEventReattributed,
    Field(discriminator="type"),
]


class EventRecord(BaseModel):
    """An accepted event as it travels on the petition-event topic (schema version 1), without
    its free text (FREE_TEXT_FIELDS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    event: RecordedEvent
    accepted_at: datetime
    key_id: str

    @property
    def event_id(self) -> UUID:
        return self.event.event_id


def noticed_at(record: EventRecord) -> datetime | None:
    """When the unit was told of a counting event: the earlier of intake's acceptance and the
    event's `reported_at`. None for events that cannot be disputed."""
    event = record.event
    if not isinstance(event, _Counting):
        return None
    return notice_of(record.accepted_at, event.reported_at)


def notice_of(accepted_at: datetime, reported_at: datetime | None) -> datetime:
    """The earlier of intake's acceptance and the sending down the event reports: a
    `reported_at` only ever shortens the time to dispute."""
    return accepted_at if reported_at is None else min(accepted_at, reported_at)


def unit_codes_of(event: Event) -> tuple[str, ...]:
    """Every unit an event names: its own and, for a re-attribution, the new one."""
    if isinstance(event, EventReattributed):
        return (event.unit_code, event.new_unit_code)
    return (event.unit_code,)
