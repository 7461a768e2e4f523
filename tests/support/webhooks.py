"""The webhooks service as its tests drive it: in process on the session's database, with a
receiver on 127.0.0.1 that answers as each test says and checks every delivery's signatures
(`v1` with the `standardwebhooks` package, `v1a` with Ed25519), and the changes published to
the topics the service reads as their producers would."""

import base64
import inspect
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI
from standardwebhooks import Webhook

from services.webhooks.config import WebhooksSettings
from services.webhooks.main import create_app
from shared import kafka
from shared.campaign import system_now
from shared.config import Settings
from shared.status import CriterionCounts, UnitStatus
from tests.support.app import serve
from tests.support.stack import without_user

# The Standard Webhooks schedule (5 s ... 10 h) in tens of microseconds to a third of a second.
RETRY_SCALE = 0.00001


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found


Answer = Callable[[Received], int | Awaitable[int]]


@dataclass
class Receiver:
    """Deliveries by path, each answered by its path's answer (200 unless set)."""

    port: int = 0
    answers: dict[str, Answer] = field(default_factory=dict)
    received: dict[str, list[Received]] = field(default_factory=lambda: defaultdict(list))

    def endpoint(self, path: str, answer: Answer = lambda _: 200) -> str:
        self.answers[path] = answer
        return f"http://127.0.0.1:{self.port}{path}"

    def delivered(self, path: str) -> list[Received]:
        return [r for r in self.received[path] if 200 <= r.status < 300]

    async def handle(self, request: web.Request) -> web.Response:
        received = Received(request.path, dict(request.headers), await request.read())
        self.received[request.path].append(received)
        answer = self.answers.get(request.path, lambda _: 404)(received)
        received.status = await answer if inspect.isawaitable(answer) else answer
        return web.Response(status=received.status)


def failing_first(failures: int, *, status: int = 500) -> Answer:
    """`status` for the first `failures` attempts of each webhook-id, then 200."""
    seen: Counter[str] = Counter()

    def answer(received: Received) -> int:
        seen[received.webhook_id] += 1
        return status if seen[received.webhook_id] <= failures else 200

    return answer


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.port = runner.addresses[0][1]
    try:
        yield receiver
    finally:
        await runner.cleanup()


def verify_v1(secret: str, received: Received) -> dict[str, Any]:
    """The payload, once the `v1` signature made with `secret` is found (raises otherwise)."""
    payload: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return payload


def verifies_v1a(public_key: str, received: Received) -> bool:
    """Whether a `v1a` signature of the delivery verifies with the `whpk_` public key."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key.removeprefix("whpk_")))
    headers = received.headers
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + received.body
    for signature in headers["webhook-signature"].split(" "):
        version, _, value = signature.partition(",")
        if version != "v1a":
            continue
        try:
            key.verify(base64.b64decode(value), content)
        except InvalidSignature:
            continue
        return True
    return False


def webhooks_settings(settings: Settings, *, allowed: str) -> WebhooksSettings:
    """The session's settings; the service logs in as its own role (`sanwu_webhooks`)."""
    return WebhooksSettings(
        **settings.model_dump(include={"environment", "topic_prefix"}),
        database_url=without_user(settings.database_url),
        registry_refresh_seconds=0.3,
        webhooks_allowed_targets=allowed,
        webhooks_retry_scale=RETRY_SCALE,
        webhooks_idle_poll_seconds=0.05,
        webhooks_request_timeout_seconds=2.0,
    )


@asynccontextmanager
async def running_webhooks(
    settings: WebhooksSettings,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with serve(app) as client:
        yield app, client


def status_message(
    unit_code: str, period: str, version: int, *, at: datetime | None = None
) -> UnitStatus:
    return UnitStatus(
        unit_code=unit_code,
        period=period,
        three_no=version % 2 == 1,
        counts=CriterionCounts(),
        people=CriterionCounts(),
        counting_event_ids=[],
        changed_at=at or system_now(),
        version=version,
    )


class Publisher:
    """Messages onto the session's topics, keyed as their producers key them."""

    def __init__(self, settings: Settings) -> None:
        self.producer = kafka.producer(settings)
        self.settings = settings

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        await self.producer.send_and_wait(topic, value=value, key=key)

    async def statuses(self, *statuses: UnitStatus) -> None:
        for status in statuses:
            await self.send(
                self.settings.status_topic, status.key, status.model_dump_json().encode()
            )
