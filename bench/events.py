"""Valid, unique petition events as a desk would post them, spread over a set of villages."""

import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

DESTINATIONS = ("township", "county", "city", "province")
OCCURRED_AT = "2018-06-03T09:30:00+08:00"


class EventSource:
    """An endless supply of distinct petition visits to the given villages."""

    def __init__(self, villages: list[str]) -> None:
        if not villages:
            raise ValueError("no villages to attribute events to")
        self._villages = itertools.cycle(villages)
        self._serial: Iterator[int] = itertools.count()

    def event(self) -> dict[str, Any]:
        serial = next(self._serial)
        event: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "type": "petition_visit",
            "unit_code": next(self._villages),
            "occurred_at": OCCURRED_AT,
            "destination_level": DESTINATIONS[serial % len(DESTINATIONS)],
            "headcount": 1 + serial % 7,
        }
        if serial % 4 == 0:  # some carry a petitioner reference, which intake hashes
            event["petitioner_ref"] = f"petitioner-{serial % 997}"
        return event

    def body(self) -> bytes:
        return json.dumps(self.event()).encode()

    def batch_body(self, size: int) -> bytes:
        return json.dumps({"events": [self.event() for _ in range(size)]}).encode()
