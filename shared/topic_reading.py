"""A whole topic read for a rebuild: from its beginning to its end as of now, in batches, with
the offsets read so far for a progress bar."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

from shared import kafka
from shared.config import Settings
from shared.consumer import Record


class TopicMissing(Exception):
    pass


@dataclass
class RebuildCounts:
    """What every rebuild reports; a service's rebuild adds its own counts."""

    offsets_read: int = 0
    offsets_total: int = 0
    messages: int = 0
    malformed: int = 0
    seconds: float = 0.0


async def read_whole(
    settings: Settings,
    topic: str,
    *,
    batch_size: int,
    progress: RebuildCounts | None = None,
    required_as: str | None = None,
) -> AsyncIterator[list[Record]]:
    """A topic that does not exist reads as empty, unless `required_as` names it ("status
    topic"): then `TopicMissing` is raised. `progress` is updated before each batch."""
    async with kafka.TopicReader(settings, topic, max_poll_records=batch_size) as reader:
        if not reader.partitions:
            if required_as is not None:
                raise TopicMissing(
                    f"the {required_as} {topic} does not exist (or this Kafka principal may not "
                    "read it)"
                )
            return
        begin = await reader.beginning_offsets() if progress is not None else {}
        end = await reader.end_offsets()
        if progress is not None:
            progress.offsets_total = sum(end[tp] - begin[tp] for tp in reader.partitions)
        async for records in reader.read_to(end):
            if progress is not None:
                positions = await reader.positions()
                progress.offsets_read = sum(
                    min(positions[tp], end[tp]) - begin[tp] for tp in reader.partitions
                )
            yield records
