"""Sending the deliveries: a loop that leases the due heads (the oldest pending delivery of each
subscription's unit, so a unit's deliveries go out in order), posts each on a task of its own,
signed, to the address its URL was checked for, and settles it: delivered on a 2xx (the next of
its unit, when due, leased in the same statement and sent by the same task), dead (and the
subscription disabled) on a 410, else tried again on the Standard Webhooks schedule, dead after
the last attempt.

A subscription has `webhooks_subscription_concurrency` requests at once and the instance
`webhooks_concurrency` in all, each with short timeouts, so a slow or dead receiver holds its
own slots and nobody else's; the consumers that make deliveries never wait for a receiver. A
lease outlives the longest request: an instance that dies mid-request leaves its deliveries to
be tried again once their leases end (at least once)."""

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import structlog

from services.webhooks import metrics
from services.webhooks.config import WebhooksSettings
from services.webhooks.repository import (
    Attempt,
    Claimed,
    DeliveryRepository,
    SubscriptionRepository,
)
from services.webhooks.rules import GONE, is_delivered, retry_delay
from services.webhooks.signatures import SigningKeys, signature_header
from services.webhooks.targets import Target, TargetRefused, checked_target
from shared.db import Database
from shared.retry import keep_running

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
USER_AGENT = "sanwu-webhooks/1"
LEASE_MARGIN_SECONDS = 30.0
MAX_ERROR = 300
PURGE_INTERVAL_SECONDS = 3600.0
CLAIM_PACING_SECONDS = 0.005


def keys_in_force(claimed: Claimed, now: datetime) -> list[SigningKeys]:
    keys = [SigningKeys(claimed.secret, claimed.signing_seed)]
    previous = (claimed.previous_secret, claimed.previous_signing_seed)
    if previous[0] and previous[1] and claimed.previous_until and claimed.previous_until > now:
        keys.append(SigningKeys(previous[0], previous[1]))
    return keys


class Dispatcher:
    def __init__(self, *, db: Database, settings: WebhooksSettings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.allowed = settings.allowed_targets
        self.in_flight: Counter[UUID] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._wakeup = asyncio.Event()
        # Woken by the deliveries' NOTIFY (`shared.notifications`) as a cache would be.
        self.listening = False

    def wake(self) -> None:
        self._wakeup.set()

    def new_generation(self, *_: Any) -> None:
        self.wake()

    async def run(self) -> None:
        """Until cancelled: a failed round (the database away) starts again with a growing
        pause, the requests in flight going on meanwhile."""
        try:
            await keep_running(self._dispatch, event="webhook_dispatcher_failed")
        finally:
            await self._cancel_in_flight()
            for client in self._clients.values():
                await client.aclose()
            self._clients.clear()

    def _client_for(self, target: Target) -> httpx.AsyncClient:
        """A client per https host: a connection, once its TLS was checked for one host, is
        never reused for another that resolves to the same address."""
        key = target.url.host if target.url.scheme == "https" else ""
        client = self._clients.get(key)
        if client is None:
            settings = self.settings
            timeout = httpx.Timeout(
                settings.webhooks_request_timeout_seconds,
                connect=settings.webhooks_connect_timeout_seconds,
            )
            limits = httpx.Limits(max_connections=settings.webhooks_concurrency)
            client = httpx.AsyncClient(
                timeout=timeout, limits=limits, follow_redirects=False, trust_env=False
            )
            self._clients[key] = client
        return client

    async def _dispatch(self) -> None:
        while True:
            self._wakeup.clear()
            await self._claim_and_send()
            # Requests that end meanwhile are claimed for together: a round reads every lane.
            await asyncio.sleep(CLAIM_PACING_SECONDS)
            # Until a change, a replay or a finished request (a slot free, the next of a
            # unit due) wakes it, or it is time to look for retries come due.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.webhooks_idle_poll_seconds):
                    await self._wakeup.wait()

    async def _claim_and_send(self) -> None:
        """Lease what is due and may go now, and send each on a task of its own."""
        free = self.settings.webhooks_concurrency - sum(self.in_flight.values())
        if free <= 0:
            return
        per_subscription = self.settings.webhooks_subscription_concurrency
        full = [s for s, n in self.in_flight.items() if n >= per_subscription]
        now = self.clock()
        lease = self._lease_seconds()
        async with self.db.connection() as connection:
            deliveries = DeliveryRepository(connection)
            heads = await deliveries.heads(now=now, full=full, limit=free * 4)
            chosen = self._within_slots(heads, free)
            claimed = await deliveries.lease(chosen, now=now, until=now + timedelta(seconds=lease))
        for delivery in claimed:
            self.in_flight[delivery.subscription_id] += 1
            task = asyncio.create_task(self._deliver(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _within_slots(self, heads: list[tuple[int, UUID]], free: int) -> list[int]:
        taken: Counter[UUID] = Counter()
        chosen: list[int] = []
        per_subscription = self.settings.webhooks_subscription_concurrency
        for delivery_id, subscription_id in heads:
            if len(chosen) == free:
                break
            if self.in_flight[subscription_id] + taken[subscription_id] < per_subscription:
                taken[subscription_id] += 1
                chosen.append(delivery_id)
        return chosen

    def _lease_seconds(self) -> float:
        return self.settings.webhooks_request_timeout_seconds + LEASE_MARGIN_SECONDS

    async def _deliver(self, delivery: Claimed) -> None:
        """Send, then the next of its unit while each is acknowledged and the next is due,
        in this one slot."""
        current: Claimed | None = delivery
        try:
            while current is not None:
                status, error = await self._post(current)
                current = await self._settle(current, Attempt(status, error))
        except Exception as exc:  # its lease ends and it is tried again
            log.warning("webhook_settle_failed", delivery_id=delivery.delivery_id, error=repr(exc))
        finally:
            self.in_flight[delivery.subscription_id] -= 1
            if self.in_flight[delivery.subscription_id] <= 0:
                del self.in_flight[delivery.subscription_id]
            self.wake()

    async def _post(self, delivery: Claimed) -> tuple[int | None, str | None]:
        """The receiver's status, or None and why there is none."""
        now = self.clock()
        timestamp = int(now.timestamp())
        signature = signature_header(
            message_id=delivery.message_id,
            timestamp=timestamp,
            body=delivery.body,
            keys=keys_in_force(delivery, now),
        )
        try:
            target = await checked_target(delivery.url, self.allowed)
        except TargetRefused as exc:
            return None, f"refused: {exc}"
        headers = {
            "host": target.host_header(),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        try:
            async with self._client_for(target).stream(
                "POST",
                target.request_url(),
                content=delivery.body,
                headers=headers,
                extensions=target.extensions(),
            ) as response:
                return response.status_code, None
        except httpx.HTTPError as exc:
            return None, (f"{type(exc).__name__}: {exc}")[:MAX_ERROR]

    async def _settle(self, delivery: Claimed, outcome: Attempt) -> Claimed | None:
        """Record the attempt; returns the next of the unit to send now, if any."""
        now = self.clock()
        if outcome.status is not None and is_delivered(outcome.status):
            lease_until = now + timedelta(seconds=self._lease_seconds())
            async with self.db.connection() as connection:
                following = await DeliveryRepository(connection).delivered(
                    delivery.delivery_id, status=outcome.status, at=now, lease_until=lease_until
                )
            metrics.ATTEMPTS.labels("delivered").inc()
            metrics.LAG.observe(max((now - delivery.happened_at).total_seconds(), 0.0))
            return following
        if outcome.status == GONE:
            await self._gone(delivery, now)
            return None
        delay = retry_delay(delivery.attempts + 1, scale=self.settings.webhooks_retry_scale)
        retry_at = now + timedelta(seconds=delay) if delay is not None else None
        error = outcome.error or f"the receiver answered {outcome.status}"
        async with self.db.connection() as connection:
            await DeliveryRepository(connection).failed(
                delivery.delivery_id, outcome, retry_at=retry_at, at=now
            )
        kind = "dead" if retry_at is None else "retried"
        metrics.ATTEMPTS.labels("refused" if error.startswith("refused") else kind).inc()
        log.info("webhook_attempt_failed", delivery_id=delivery.delivery_id, error=error, then=kind)
        return None

    async def _gone(self, delivery: Claimed, now: datetime) -> None:
        """The receiver says the endpoint is gone: its subscription is disabled, and this
        delivery is a dead letter (replayed once the endpoint is back, under a new
        subscription or after replay)."""
        async with self.db.session() as session:
            await (await SubscriptionRepository.from_session(session)).disable(
                delivery.subscription_id, reason="the receiver answered 410 Gone", at=now
            )
            await (await DeliveryRepository.from_session(session)).failed(
                delivery.delivery_id, Attempt(GONE, "410 Gone"), retry_at=None, at=now
            )
        metrics.ATTEMPTS.labels("gone").inc()
        log.info("webhook_subscription_disabled", subscription_id=str(delivery.subscription_id))

    async def _cancel_in_flight(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.in_flight.clear()

    async def purge(self, retention: timedelta) -> None:
        """Forget delivered deliveries older than `retention`, hourly, until cancelled."""

        async def once() -> None:
            async with self.db.connection() as connection:
                await DeliveryRepository(connection).purge(before=self.clock() - retention)
            await asyncio.sleep(PURGE_INTERVAL_SECONDS)

        await keep_running(once, event="webhook_purge_failed")
