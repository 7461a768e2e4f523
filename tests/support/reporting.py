"""Reporting as the tests drive it: the app run in-process and restartable; `UnitStatus`
messages on the status topic, sent with an idempotent producer as evaluation does; waiting until
reporting's consumer group has committed them; the demo registry's units."""

import asyncio
import csv
import uuid
from contextlib import AsyncExitStack
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata, TopicPartition
from fastapi import FastAPI

from services.reporting.config import ReportingSettings
from services.reporting.consumers import StatusConsumer
from services.reporting.main import create_app
from services.reporting.service import ReportingService
from shared import kafka
from shared.campaign import system_now
from shared.early_warning import EarlyWarning, WarningKind
from shared.events import RatingSource
from shared.indicators import RatingCounts, UnitIndicators
from shared.status import CriterionCounts, UnitStatus
from tests.support.app import serve
from tests.support.waiting import wait_until

DEMO_UNITS = Path(__file__).resolve().parents[2] / "data" / "demo-units.csv"


class Reporting:
    """The reporting app, run in-process; `restart` is a full stop and start of the service."""

    def __init__(self, settings: ReportingSettings) -> None:
        self.settings = settings
        self._stack: AsyncExitStack | None = None
        self._client: httpx.AsyncClient | None = None
        self._app: FastAPI | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        assert self._client is not None, "reporting is stopped"
        return self._client

    async def start(self) -> None:
        self._stack = AsyncExitStack()
        self._app = create_app(self.settings)
        self._client = await self._stack.enter_async_context(serve(self._app, "http://reporting"))

    async def stop(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = self._client = self._app = None

    @property
    def consumer(self) -> StatusConsumer:
        assert self._app is not None, "reporting is stopped"
        consumer: StatusConsumer = self._app.state.consumer
        return consumer

    @property
    def service(self) -> ReportingService:
        assert self._app is not None, "reporting is stopped"
        service: ReportingService = self._app.state.reporting
        return service

    async def get(self, url: str, key: str, **params: Any) -> httpx.Response:
        return await self.client.get(url, params=params, headers={"Authorization": f"Bearer {key}"})


def status(
    unit_code: str,
    period: str,
    version: int,
    *,
    three_no: bool = False,
    counts: dict[str, int] | None = None,
    people: dict[str, int] | None = None,
) -> UnitStatus:
    """A status as evaluation publishes it; not three-no means one collective visit of 6 by
    default."""
    if three_no:
        counts, people = counts or {}, people or {}
    else:
        counts = counts if counts is not None else {"collective": 1}
        people = people if people is not None else {"collective": 6}
    events = [str(uuid.uuid4()) for _ in range(sum(counts.values()))]
    return UnitStatus(
        unit_code=unit_code,
        period=period,
        three_no=three_no,
        counts=CriterionCounts(**counts),
        people=CriterionCounts(**people),
        counting_event_ids=events,
        changed_at=system_now(),
        version=version,
    )


def indicators(
    unit_code: str,
    period: str,
    version: int,
    *,
    meetings_held: list[date] | None = None,
    ratings: dict[RatingSource, tuple[int, int, int]] | None = None,
) -> UnitIndicators:
    """Indicators as evaluation publishes them; ratings per source as (satisfied, basically
    satisfied, dissatisfied)."""
    return UnitIndicators(
        unit_code=unit_code,
        period=period,
        meetings_held=sorted(meetings_held or []),
        ratings={
            source: RatingCounts(satisfied=s, basically_satisfied=b, dissatisfied=d)
            for source, (s, b, d) in (ratings or {}).items()
        },
        changed_at=system_now(),
        version=version,
    )


def warning(
    unit_code: str,
    *,
    kind: WarningKind = WarningKind.near_threshold,
    version: int = 1,
    warning_id: uuid.UUID | None = None,
    cleared: bool = False,
) -> EarlyWarning:
    """A warning as evaluation publishes it; a clear is a later version with `cleared_at`."""
    now = system_now()
    return EarlyWarning(
        warning_id=warning_id or uuid.uuid4(),
        kind=kind,
        unit_code=unit_code,
        raised_at=now,
        cleared_at=now if cleared else None,
        event_ids=[str(uuid.uuid4())],
        detail={"headcount": 4},
        version=version,
    )


class StatusPublisher:
    def __init__(self, settings: ReportingSettings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer = kafka.producer(settings)

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def publish(self, *statuses: UnitStatus) -> list[RecordMetadata]:
        """Send in the order given (per key, that is the order on the topic) and wait for acks."""
        return await self.publish_raw([(s.key, s.model_dump_json().encode()) for s in statuses])

    async def publish_raw(
        self, messages: list[tuple[bytes | None, bytes | None]], *, topic: str | None = None
    ) -> list[RecordMetadata]:
        """To the status topic unless another is named."""
        deliveries = [
            await self.producer.send(topic or self.settings.status_topic, key=key, value=value)
            for key, value in messages
        ]
        return list(await asyncio.gather(*deliveries))

    async def publish_indicators(self, *messages: UnitIndicators) -> list[RecordMetadata]:
        raw = [(m.key, m.model_dump_json().encode()) for m in messages]
        return await self.publish_raw(raw, topic=self.settings.indicator_topic)

    async def publish_warnings(self, *warnings: EarlyWarning) -> list[RecordMetadata]:
        raw = [(w.key, w.model_dump_json().encode()) for w in warnings]
        return await self.publish_raw(raw, topic=self.settings.warning_topic)


async def wait_committed(
    settings: ReportingSettings,
    sent: list[RecordMetadata],
    *,
    timeout: float = 20.0,
    group: str | None = None,
) -> None:
    """Until reporting's group (the status consumer's unless named) has committed past every
    message sent: then each was applied, ignored or dead-lettered."""
    group = group or settings.consumer_group
    needed: dict[TopicPartition, int] = {}
    for record in sent:
        tp = TopicPartition(record.topic, record.partition)
        needed[tp] = max(needed.get(tp, 0), record.offset + 1)
    admin = kafka.admin(settings)
    await admin.start()
    try:

        async def done() -> bool:
            committed = await kafka.committed_offsets(admin, group)
            return committed is not None and all(
                committed.get(tp, 0) >= offset for tp, offset in needed.items()
            )

        await wait_until(done, timeout=timeout, message="reporting to commit the messages sent")
    finally:
        await admin.close()


async def wait_caught_up(settings: ReportingSettings, *, timeout: float = 30.0) -> None:
    """Until reporting's three consumers have committed past the end of their topics as it
    is now: what earlier tests published (warnings count in every summary) is applied."""
    sources = [
        (settings.status_topic, settings.consumer_group),
        (settings.indicator_topic, settings.indicator_consumer_group),
        (settings.warning_topic, settings.warning_consumer_group),
    ]
    needed = [(group, await kafka.end_offsets(settings, topic)) for topic, group in sources]
    admin = kafka.admin(settings)
    await admin.start()
    try:

        async def done() -> bool:
            for group, ends in needed:
                committed = await kafka.committed_offsets(admin, group)
                if committed is None or any(
                    committed.get(tp, 0) < end for tp, end in ends.items() if end > 0
                ):
                    return False
            return True

        await wait_until(done, timeout=timeout, message="reporting to catch up with its topics")
    finally:
        await admin.close()


def demo_units() -> list[dict[str, Any]]:
    with DEMO_UNITS.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def demo_townships() -> list[str]:
    return sorted(u["code"] for u in demo_units() if u["level"] == "township")


def demo_villages(township: str | None = None) -> list[str]:
    return sorted(
        u["code"]
        for u in demo_units()
        if u["level"] == "village" and (township is None or u["parent_code"] == township)
    )
