"""The dead letters of the messages a test sent, found by each message's own place on its topic
(the headers `shared.consumer.dead_letter_headers` adds) and the consumer that refused it, never
by what else the run dead-lettered: other tests and other services' consumers of the same topic
put their own letters there."""

from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka.structs import RecordMetadata

from shared.config import Settings
from tests.support.stack import read_topic


@dataclass(frozen=True)
class Letter:
    value: bytes
    reason: str


async def dead_letters(
    settings: Settings, sent: Sequence[RecordMetadata], *, by: str
) -> list[Letter | None]:
    """For each message of `sent`, in that order, its dead letter from the consumer named
    `by`; None for a message that consumer did not dead-letter."""
    found: dict[tuple[str, int, int], Letter] = {}
    for _, _, value, headers in await read_topic(settings, settings.dead_letter_topic):
        if headers.get("dead_letter_by") != by.encode():
            continue
        place = (
            headers["source_topic"].decode(),
            int(headers["source_partition"]),
            int(headers["source_offset"]),
        )
        found[place] = Letter(value, headers["dead_letter_reason"].decode())
    return [found.get((m.topic, m.partition, m.offset)) for m in sent]


async def dead_letter_reasons(
    settings: Settings, sent: Sequence[RecordMetadata], *, by: str
) -> list[str | None]:
    """The reason of each message's dead letter (as `dead_letters`)."""
    return [letter and letter.reason for letter in await dead_letters(settings, sent, by=by)]
