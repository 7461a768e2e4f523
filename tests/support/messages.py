"""Messages as a consumer receives them: a (key, value) made into the record the parsers of
`shared.messages` take, and a topic's messages read back through the one parser of their type
(each must pass it)."""

from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from aiokafka import ConsumerRecord

from shared.config import Settings
from shared.consumer import Record, Rejected
from shared.early_warning import EarlyWarning
from shared.events import EventRecord
from shared.messages import parse_early_warning, parse_event_record
from tests.support.stack import read_topic

Message = TypeVar("Message")


def record_of(key: bytes | None, value: bytes | None, *, topic: str = "t") -> Record:
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=0,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=[],
    )


def accepted(parsed: Sequence[Message | Rejected]) -> list[Message]:
    """The parsed messages, none of them refused."""
    messages = [p for p in parsed if not isinstance(p, Rejected)]
    assert len(messages) == len(parsed), [p for p in parsed if isinstance(p, Rejected)]
    return messages


async def parsed_from_topic(
    settings: Settings,
    topic: str,
    parse: Callable[[Record], Message | Rejected],
    *,
    keys: Collection[bytes],
) -> list[Message]:
    """The messages with these keys on the topic, in order, through `parse`; poison messages
    other tests put there on purpose (keyed otherwise) are left out."""
    return accepted(
        [
            parse(record_of(key, value, topic=topic))
            for _, key, value, _ in await read_topic(settings, topic)
            if key in keys
        ]
    )


async def published_warnings(
    settings: Settings, warning_ids: Collection[str]
) -> list[EarlyWarning]:
    """The messages of these warnings on the warning topic, in order."""
    keys = {i.encode() for i in warning_ids}
    return await parsed_from_topic(settings, settings.warning_topic, parse_early_warning, keys=keys)


async def event_records(settings: Settings, event_ids: Collection[str]) -> list[EventRecord]:
    """The records of these events on the petition-event topic, in order. Intake keys them by
    county: the records naming one of the events are parsed (a correction names its target),
    malformed messages other tests put there are not."""
    named = [
        record_of(key, value)
        for _, key, value, _ in await read_topic(settings, settings.events_topic)
        if value is not None and any(i.encode() in value for i in event_ids)
    ]
    records = accepted([parse_event_record(r) for r in named])
    return [r for r in records if str(r.event_id) in event_ids]
