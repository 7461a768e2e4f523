"""Where an event's end-to-end time goes: each event of the end-to-end stage followed through
the stamps the pipeline leaves behind, all on this machine's wall clock.

- accepted: intake's 202, as the bench saw it;
- on the event topic: the record's timestamp, set when intake's relay handed it to its producer;
- evaluation applying: `changed_at` of the village's status, the time evaluation's apply
  transaction took the event;
- on the status topic: the status record's timestamp, set by evaluation's relay;
- reporting applying: `applied_at` of the village's row in reporting's feed table, the start of
  reporting's apply transaction;
- shown: the bench's read of the feed table after reporting's commit NOTIFY.

Each leg is the difference of two stamps, so it names one wait and the work next to it."""

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from bench.report import percentile
from shared.config import Settings
from shared.topic_reading import read_whole

STAMPS = (
    "accepted",
    "on the event topic",
    "evaluation applying",
    "on the status topic",
    "reporting applying",
    "shown",
)
LEGS = tuple(itertools.pairwise(STAMPS))


@dataclass(frozen=True)
class Leg:
    start: str
    end: str
    p50_ms: float
    p99_ms: float

    def describe(self) -> str:
        return f"{self.start} → {self.end}: p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms"


def unit_of(message: dict[str, Any]) -> str | None:
    """The unit of a status (at the top) or of a published event (under `event`)."""
    unit_code = message.get("unit_code") or (message.get("event") or {}).get("unit_code")
    return unit_code if isinstance(unit_code, str) else None


async def first_stamps(settings: Settings, topic: str) -> dict[str, float]:
    """The first record's timestamp (seconds) per village of the topic's messages."""
    stamps: dict[str, float] = {}
    async for records in read_whole(settings, topic, batch_size=5000):
        for record in records:
            if record.value is None:
                continue
            unit_code = unit_of(json.loads(record.value))
            if unit_code is not None:
                stamps.setdefault(unit_code, record.timestamp / 1000)
    return stamps


async def reporting_stamps(dsn: str, villages: list[str]) -> tuple[dict[str, float], ...]:
    """Evaluation's `changed_at` and reporting's `applied_at` of each village's first change."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT DISTINCT ON (unit_code) unit_code, extract(epoch FROM changed_at) AS changed,"
            " extract(epoch FROM applied_at) AS applied FROM reporting.status_changes"
            " WHERE unit_code = ANY($1::bpchar[]) ORDER BY unit_code, seq",
            villages,
        )
    finally:
        await connection.close()
    changed = {r["unit_code"]: float(r["changed"]) for r in rows}
    applied = {r["unit_code"]: float(r["applied"]) for r in rows}
    return changed, applied


async def timeline(
    settings: Settings, dsn: str, *, accepted: Mapping[str, float], shown: Mapping[str, float]
) -> list[Leg]:
    """The legs' percentiles over the villages every stamp was found for; `accepted` and
    `shown` are wall-clock seconds per village."""
    villages = list(accepted)
    on_events = await first_stamps(settings, settings.events_topic)
    on_statuses = await first_stamps(settings, settings.status_topic)
    changed, applied = await reporting_stamps(dsn, villages)
    by_stamp = dict(
        zip(STAMPS, (accepted, on_events, changed, on_statuses, applied, shown), strict=True)
    )
    complete = [v for v in villages if all(v in stamps for stamps in by_stamp.values())]
    if not complete:
        missing = {
            name: len(villages) - len(stamps.keys() & accepted.keys())
            for name, stamps in by_stamp.items()
        }
        raise RuntimeError(f"no village has every stamp; villages without each: {missing}")
    legs = []
    for start, end in LEGS:
        spans = sorted((by_stamp[end][v] - by_stamp[start][v]) * 1000 for v in complete)
        legs.append(Leg(start, end, percentile(spans, 50), percentile(spans, 99)))
    return legs
