"""The webhooks service on the session's database, a receiver on 127.0.0.1 (the one target its
allow-list names), and a publisher of the changes it reads."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from shared.config import Settings
from tests.support.webhooks import (
    Publisher,
    Receiver,
    receiving,
    running_webhooks,
    webhooks_settings,
)


@dataclass
class RunningWebhooks:
    app: FastAPI
    client: httpx.AsyncClient


@pytest.fixture(scope="package")
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as found:
        yield found


@pytest.fixture(scope="package")
async def webhooks(settings: Settings, receiver: Receiver) -> AsyncIterator[RunningWebhooks]:
    allowed = f"127.0.0.1:{receiver.port}"
    async with running_webhooks(webhooks_settings(settings, allowed=allowed)) as (app, client):
        yield RunningWebhooks(app, client)


@pytest.fixture(scope="package")
async def publisher(settings: Settings) -> AsyncIterator[Publisher]:
    found = Publisher(settings)
    await found.start()
    yield found
    await found.stop()
