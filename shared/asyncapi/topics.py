"""What travels on each topic: its message (the model of `shared.messages`), how it is keyed,
which headers its producers set, and an example. Who writes and reads each topic is
`shared.kafka_rights.RIGHTS`; its partitions and configuration, `shared.kafka.topic_specs`.

Keys and header values are bytes on Kafka; the document describes them as the UTF-8 text every
producer writes. Headers are listed exhaustively (`additionalProperties: false`): a producer
that sets one more must say so here, or the test that reads every topic fails."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from shared import kafka_rights
from shared.application_steps import ApplicationStep
from shared.asyncapi import examples
from shared.case_steps import CaseStep
from shared.dispute_steps import DisputeStep
from shared.early_warning import EarlyWarning
from shared.events import EventRecord
from shared.indicators import UnitIndicators
from shared.logging import CORRELATION_HEADER
from shared.messages import CODE, PERIOD
from shared.status import UnitStatus

Schema = dict[str, Any]


@dataclass(frozen=True)
class Contract:
    """A topic's message. `topic` is its property on `Settings` (as in kafka_rights); `model`
    None means any bytes (a dead letter carries what was refused, unchanged)."""

    topic: str
    message: str
    model: type[BaseModel] | None
    title: str
    description: str
    key: Schema
    headers: Schema
    example: Callable[[], Any]
    example_headers: dict[str, str]
    content_type: str = "application/json"

    @property
    def channel(self) -> str:
        """The channel's id: the topic's name without the prefix."""
        return kafka_rights.topic_name(self.topic, "")


def _inner(pattern: re.Pattern[str]) -> str:
    return pattern.pattern.removeprefix("^").removesuffix("$")


def text_key(description: str, example: str, **schema: Any) -> Schema:
    return {"type": "string", "description": description, "examples": [example], **schema}


def uuid_key(description: str, example: str) -> Schema:
    return text_key(description, example, format="uuid")


def headers(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    schema: Schema = {
        "type": "object",
        "properties": required | (optional or {}),
        "additionalProperties": False,
    }
    return schema | ({"required": list(required)} if required else {})


def kind(value: str) -> Schema:
    return {"type": "string", "const": value, "description": "The message's type."}


CORRELATION_ID: Schema = {
    "type": "string",
    "description": f"The id of the request that caused the message (its `{CORRELATION_HEADER}` "
    "header, or one made for it), as in every log line about it.",
}
COUNTY_KEY = text_key(
    "The county of the unit (12 digits): one county's messages stay in order.",
    examples.COUNTY,
    pattern=CODE.pattern,
)
UNIT_PERIOD_KEY = text_key(
    "`unit_code:period`: the latest message per key is the unit's state for the period.",
    f"{examples.VILLAGE}:2018",
    pattern=f"^{_inner(CODE)}:{_inner(PERIOD)}$",
)
DEAD_LETTER_HEADERS: Schema = {
    "type": "object",
    "properties": {
        "dead_letter_reason": {"type": "string", "description": "Why it was refused."},
        "dead_letter_by": {"type": "string", "description": "The consumer that refused it."},
        "source_topic": {"type": "string", "description": "The topic it was read from."},
        "source_partition": {"type": "string", "pattern": "^[0-9]+$"},
        "source_offset": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "required": [
        "dead_letter_reason",
        "dead_letter_by",
        "source_topic",
        "source_partition",
        "source_offset",
    ],
    # The refused record's own headers travel with it.
    "additionalProperties": {"type": "string"},
}

CONTRACTS: tuple[Contract, ...] = (
    Contract(
        topic=kafka_rights.EVENTS,
        message="EventRecord",
        model=EventRecord,
        title="An accepted petition event",
        description="Every event intake accepted, without its free text (summary, reason, "
        "category, platform), references as keyed hashes, with who accepted it and when. "
        "Kept forever: evaluation rebuilds from it.",
        key=COUNTY_KEY,
        headers=headers(
            {
                "event_id": {"type": "string", "format": "uuid", "description": "The event's id."},
                "correlation_id": CORRELATION_ID,
            }
        ),
        example=examples.event_record,
        example_headers={
            "event_id": examples.VISIT["event_id"],
            "correlation_id": examples.CORRELATION_ID,
        },
    ),
    Contract(
        topic=kafka_rights.STATUSES,
        message="UnitStatus",
        model=UnitStatus,
        title="A unit's three-no status for a period",
        description="The whole status after each change, its version one higher; compacted to "
        "the latest per unit and period. A rebuild publishes every status that changed.",
        key=UNIT_PERIOD_KEY,
        headers=headers({}, {"correlation_id": CORRELATION_ID}),
        example=examples.unit_status,
        example_headers={"correlation_id": examples.CORRELATION_ID},
    ),
    Contract(
        topic=kafka_rights.INDICATORS,
        message="UnitIndicators",
        model=UnitIndicators,
        title="A unit's work-record indicators for a period",
        description="The slots in which the unit's own screening meetings fell and the ratings "
        "of its subtree, after each change; compacted like statuses.",
        key=UNIT_PERIOD_KEY,
        headers=headers({}, {"correlation_id": CORRELATION_ID}),
        example=examples.unit_indicators,
        example_headers={"correlation_id": examples.CORRELATION_ID},
    ),
    Contract(
        topic=kafka_rights.WARNINGS,
        message="EarlyWarning",
        model=EarlyWarning,
        title="An early warning raised or cleared",
        description="Each version of a warning, whole: evaluation's from the events it applies, "
        "the cases service's (`case_due_soon`, `case_overdue`, with the `type` header) from "
        "the clocks of cases.",
        key=uuid_key(
            "The warning's id: every version of a warning in order.",
            examples.early_warning()["warning_id"],
        ),
        headers=headers({}, {"type": kind("early_warning")}),
        example=examples.early_warning,
        example_headers={},
    ),
    Contract(
        topic=kafka_rights.APPLICATION_STEPS,
        message="ApplicationStep",
        model=ApplicationStep,
        title="A step of an application for the three-no title",
        description="Who did what to an application, when and why, kept forever; the "
        "service's own flag steps name no key.",
        key=COUNTY_KEY | {"description": "The county that applies (12 digits)."},
        headers=headers({}, {"correlation_id": CORRELATION_ID}),
        example=examples.application_step,
        example_headers={"correlation_id": examples.CORRELATION_ID},
    ),
    Contract(
        topic=kafka_rights.DISPUTE_STEPS,
        message="DisputeStep",
        model=DisputeStep,
        title="A step of a dispute of a counted event",
        description="The step and the dispute as it stands after it, kept forever. "
        "Evaluation follows the ruling in force, reporting lists the live disputes.",
        key=uuid_key(
            "The disputed event's id: every step of its disputes in order.",
            examples.VISIT["event_id"],
        ),
        headers=headers({"type": kind("dispute_step")}),
        example=examples.dispute_step,
        example_headers={"type": "dispute_step"},
    ),
    Contract(
        topic=kafka_rights.CASE_STEPS,
        message="CaseStep",
        model=CaseStep,
        title="A step of a case (信访事项)",
        description="The step and the case as it stands after it, kept forever, without the "
        "petitioner's summary (protected free text); intake reads the ratings as work records.",
        key=uuid_key(
            "The case's id: every step of one case in order.",
            examples.case_step()["case"]["case_id"],
        ),
        headers=headers({"type": kind("case_step")}),
        example=examples.case_step,
        example_headers={"type": "case_step"},
    ),
    Contract(
        topic=kafka_rights.DEAD_LETTERS,
        message="DeadLetter",
        model=None,
        title="A record a consumer could not decode or apply",
        description="The refused record's key, value and headers unchanged, with why, by whom "
        "and where it was read. Kept forever; no service reads it.",
        key={"description": "The refused record's key, unchanged (absent if it had none)."},
        headers=DEAD_LETTER_HEADERS,
        example=lambda: "not json",
        example_headers={
            "dead_letter_reason": "not a unit status: message: Invalid JSON: expected value at "
            "line 1 column 1",
            "dead_letter_by": "reporting",
            "source_topic": "sanwu.unit-status",
            "source_partition": "3",
            "source_offset": "1207",
        },
        content_type="application/octet-stream",
    ),
)
