"""Intake, evaluation and reporting run together in-process, as desks and the city see them.

They get a database and a topic prefix of their own (`tests.support.stack`), with the demo
registry and the keys the tests need. Statuses in the periods these tests add to the campaign
must stay out of the session database: the evaluation rebuild tests recompute its statuses
under the plain campaign file and expect no difference.

`Pipeline.drained()` is the barrier the tests wait on: every accepted event is on the event
topic, evaluation has committed past all of it and published what changed, and reporting has
committed past every status published. It polls, with a deadline."""

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.applications.config import ApplicationsSettings
from services.applications.main import create_app as create_applications_app
from services.cases.config import CasesSettings
from services.cases.main import create_app as create_cases_app
from services.evaluation.config import EvaluationSettings
from services.evaluation.main import create_app as create_evaluation_app
from services.intake.config import IntakeSettings
from services.intake.main import create_app as create_intake_app
from services.migrations import migrate_all
from services.reporting.config import ReportingSettings
from shared import kafka
from shared.access import service as access_service
from shared.access.models import Role
from shared.config import Settings
from shared.db import Database
from shared.registry.loader import load_file
from shared.status import UnitStatus
from tests.support.app import bearer, serve
from tests.support.outbox import wait_outbox_drained
from tests.support.reporting import Reporting
from tests.support.stack import create_database, drop_database, new_stack, read_topic
from tests.support.waiting import wait_until

KeySpecs = dict[str, tuple[Role, str | None]]  # name: (role, scope; None for everywhere)


@dataclass
class Pipeline:
    settings: Settings
    db: Database
    keys: dict[str, str]
    intake: httpx.AsyncClient
    reporting: Reporting  # stop() and start() restart it
    evaluation_group: str
    admin: AIOKafkaAdminClient
    offsets: AIOKafkaConsumer
    applications: httpx.AsyncClient | None = None  # with `running_pipeline(applications=True)`
    evaluation: httpx.AsyncClient | None = None
    cases: httpx.AsyncClient | None = None  # with `running_pipeline(cases=...)`

    async def post(self, key: str, *payloads: dict[str, Any]) -> list[str]:
        """Post through intake's batch endpoint; every event must be accepted."""
        response = await self.intake.post(
            "/v1/events/batch", json={"events": list(payloads)}, headers=bearer(key)
        )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["status"] for r in results] == ["accepted"] * len(payloads), results
        return [p["event_id"] for p in payloads]

    async def evaluated(self, *, timeout: float = 30.0) -> None:
        """Until evaluation has applied everything intake accepted and published the changes."""
        await wait_outbox_drained(self.db, schema="intake", timeout=timeout)
        await wait_until(
            lambda: self._caught_up(self.evaluation_group, self.settings.events_topic),
            timeout=timeout,
            message="evaluation to commit past every event",
        )
        await wait_outbox_drained(self.db, schema="evaluation", timeout=timeout)

    async def drained(self, *, timeout: float = 30.0) -> None:
        """`evaluated`, and then until reporting has applied every status published."""
        await self.evaluated(timeout=timeout)
        await wait_until(
            lambda: self._caught_up(
                self.reporting.settings.consumer_group, self.settings.status_topic
            ),
            timeout=timeout,
            message="reporting to commit past every status",
        )

    async def published_statuses(self) -> list[UnitStatus]:
        """Every status evaluation published, in offset order per partition (so in the order
        published for each unit and period)."""
        messages = await read_topic(self.settings, self.settings.status_topic)
        return [UnitStatus.model_validate(json.loads(value)) for _, _, value, _ in messages]

    async def _caught_up(self, group: str, topic: str) -> bool:
        """Whether the group has committed up to the end of every partition of the topic."""
        count = (
            self.settings.event_partitions
            if topic == self.settings.events_topic
            else self.settings.status_partitions
        )
        ends = await self.offsets.end_offsets([TopicPartition(topic, p) for p in range(count)])
        committed = await kafka.committed_offsets(self.admin, group)
        return committed is not None and all(
            committed.get(tp, 0) >= end for tp, end in ends.items()
        )


async def prepare(
    settings: Settings, *, registry: Sequence[Path], keys: KeySpecs
) -> dict[str, str]:
    """Migrate, load the registry, create the keys and the topics; returns the keys."""
    await migrate_all(settings)
    db = Database.from_settings(settings, pool_size=1)
    try:
        async with db.engine.begin() as connection:
            for path in registry:
                await load_file(connection, path)
            created = {
                name: await access_service.create(connection, role=role, scope_code=scope)
                for name, (role, scope) in keys.items()
            }
    finally:
        await db.dispose()
    await kafka.ensure_topics(settings)
    return created


@asynccontextmanager
async def running_pipeline(
    *,
    campaign_file: Path,
    registry: Sequence[Path],
    keys: KeySpecs,
    applications: bool = False,
    cases: Callable[[], datetime] | None = None,
) -> AsyncIterator[Pipeline]:
    """The three services on a database and topics of their own, all given `campaign_file`;
    with `applications`, the applications service too (its window open all year); with
    `cases`, the cases service too, on that clock."""
    stack = new_stack()
    common: dict[str, Any] = {
        "environment": "test",
        "database_url": stack.database_url,
        "topic_prefix": stack.topic_prefix,
        "campaign_file": campaign_file,
        "registry_refresh_seconds": 0.3,
    }
    settings = Settings(**common)
    await create_database(stack.database)
    try:
        created = await prepare(settings, registry=registry, keys=keys)
        evaluation_settings = EvaluationSettings(
            **common,
            evaluation_poll_ms=50,
            status_relay_idle_poll_seconds=0.2,
            evaluation_session_timeout_ms=6000,
        )
        async with AsyncExitStack() as running:
            db = Database.from_settings(settings, pool_size=2)
            running.push_async_callback(db.dispose)
            admin = kafka.admin(settings)
            await admin.start()
            running.push_async_callback(admin.close)
            offsets = kafka.consumer(settings, group_id=None)
            await offsets.start()
            running.push_async_callback(offsets.stop)
            intake = await running.enter_async_context(
                serve(
                    create_intake_app(IntakeSettings(**common, relay_idle_poll_seconds=0.2)),
                    "http://intake",
                )
            )
            evaluation = await running.enter_async_context(
                serve(create_evaluation_app(evaluation_settings), "http://evaluation")
            )
            reporting = Reporting(ReportingSettings(**common))
            await reporting.start()
            running.push_async_callback(reporting.stop)
            applications_client = None
            if applications:
                applications_settings = ApplicationsSettings(
                    **common,
                    application_window="01-01/12-31",
                    applications_relay_idle_poll_seconds=0.2,
                )
                applications_client = await running.enter_async_context(
                    serve(create_applications_app(applications_settings), "http://applications")
                )
            cases_client = None
            if cases is not None:
                cases_client = await running.enter_async_context(
                    serve(
                        create_cases_app(
                            CasesSettings(**common, cases_relay_idle_poll_seconds=0.2),
                            clock=cases,
                        ),
                        "http://cases",
                    )
                )
            yield Pipeline(
                settings=settings,
                db=db,
                keys=created,
                intake=intake,
                reporting=reporting,
                evaluation_group=evaluation_settings.group_id,
                admin=admin,
                offsets=offsets,
                applications=applications_client,
                evaluation=evaluation,
                cases=cases_client,
            )
    finally:
        await drop_database(stack.database)
        topics = [settings.events_topic, settings.status_topic, settings.dead_letter_topic]
        topics += [settings.application_topic] if applications else []
        topics += [settings.disputes_topic] if cases is not None else []
        with contextlib.suppress(Exception):
            await kafka.delete_topics(settings, topics)
