"""Intake fixtures and helpers shared by every test package (registered in tests/conftest.py)."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from services.intake.config import IntakeSettings
from services.intake.main import create_app, relay
from shared.config import Settings
from shared.db import Database
from tests.support.app import serve
from tests.support.outbox import outbox_count, wait_outbox_drained  # noqa: F401
from tests.support.stack import read_topic


class RelayControl:
    """The outbox relay as a task the tests can stop and start."""

    def __init__(self, db: Database, settings: IntakeSettings) -> None:
        self.relay = relay(db, settings)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self.relay.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None


@pytest.fixture(scope="session")
async def intake_settings(settings: Settings) -> IntakeSettings:
    # The ratings of cases become work records only where a test asks for it
    # (tests/cases/test_case_ratings.py): other tests count the work records they post.
    return IntakeSettings(
        intake_run_relay=False, relay_idle_poll_seconds=0.2, intake_run_case_ratings=False
    )


@pytest.fixture(scope="session")
async def intake(intake_settings: IntakeSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(intake_settings), "http://intake") as client:
        yield client


@pytest.fixture(scope="session")
async def relay_control(
    db: Database, intake_settings: IntakeSettings
) -> AsyncIterator[RelayControl]:
    control = RelayControl(db, intake_settings)
    control.start()
    yield control
    await control.stop()


async def journal_has(db: Database, event_id: str) -> bool:
    async with db.engine.connect() as connection:
        found = await connection.execute(
            sa.text("SELECT 1 FROM intake.journal WHERE event_id = :id"), {"id": event_id}
        )
        return found.first() is not None


async def published(settings: Settings) -> list[dict[str, Any]]:
    """Every event message on the petition-event topic: key, partition, headers and decoded
    value. Messages that are not event records (poison messages other tests publish on
    purpose) are left out."""
    messages = []
    for partition, key, value, headers in await read_topic(settings, settings.events_topic):
        try:
            decoded = json.loads(value)
        except ValueError:
            continue
        if isinstance(decoded, dict) and isinstance(decoded.get("event"), dict):
            messages.append(
                {"partition": partition, "key": key, "headers": headers, "value": decoded}
            )
    return messages


def published_ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["value"]["event"]["event_id"] for m in messages]
