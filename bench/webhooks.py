"""Stage: webhook deliveries (services/webhooks) to a receiver on 127.0.0.1 in this process.

- Deliveries per second: status changes put on the service's status topic as evaluation's
  relay publishes them, all at once, each heard by SUBSCRIPTIONS subscriptions; timed from the
  first produced to the last delivery answered. Baseline: a bare client posting the same
  bodies to the same receiver with as many requests at once as the service may have
  (SUBSCRIPTIONS × the per-subscription slots).
- Lag: status changes produced at a steady pace, each stamped with the moment it was produced
  (its `changed_at`, the payload's `timestamp`); the lag is when its delivery reached the
  receiver minus that, p50 and p99 (target: p99 <= 1 s)."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import orjson
from aiohttp import web

from bench.environment import DEMO_COUNTY
from bench.pipeline import fresh_prefix
from bench.report import LatencySeries, Result, Target, percentile
from bench.services import Service
from bench.stage import BenchContext, Stage
from services.webhooks.changes import status_change
from shared import kafka
from shared.access.models import Role
from shared.config import Settings
from shared.status import CriterionCounts, UnitStatus

NAME = "webhooks"
APP = "services.webhooks.main:create_app"
SUBSCRIPTIONS = 4
SLOTS = 4  # the service's default requests at once per subscription
DELIVERY_TIMEOUT = 300.0
LAG_TARGET_MS = 1000.0


@dataclass
class Receiver:
    """Counts the deliveries answered and, for those stamped, how late each came."""

    port: int = 0
    answered: int = 0
    lags_ms: list[float] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        payload = orjson.loads(await request.read())
        stamped = datetime.fromisoformat(payload["timestamp"])
        self.lags_ms.append((datetime.now(UTC) - stamped).total_seconds() * 1000)
        self.answered += 1
        if self.answered >= self.expected:
            self.arrived.set()
        return web.Response(status=204)

    def expect(self, count: int) -> None:
        self.answered, self.lags_ms, self.expected = 0, [], count
        self.arrived.clear()


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


def status(unit_code: str, period: str, version: int) -> UnitStatus:
    return UnitStatus(
        unit_code=unit_code,
        period=period,
        three_no=version % 2 == 1,
        counts=CriterionCounts(),
        people=CriterionCounts(),
        counting_event_ids=[],
        changed_at=datetime.now(UTC),
        version=version,
    )


async def subscribe(service: Service, key: str, receiver: Receiver, count: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as session:
        for n in range(count):
            body = {"url": f"http://127.0.0.1:{receiver.port}/{n}", "kinds": ["status_changes"]}
            async with session.post(
                f"{service.url}/v1/subscriptions", json=body, headers=headers
            ) as response:
                if response.status != 201:
                    raise RuntimeError(f"subscribing: {response.status} {await response.text()}")


async def produce(settings: Settings, statuses: list[UnitStatus], *, pace: float = 0) -> None:
    """On the status topic, keyed as evaluation's relay keys them; `pace` changes a second
    (0: as fast as the producer goes), each stamped as it is sent."""
    producer = kafka.producer(settings)
    await producer.start()
    try:
        began = time.monotonic()
        sends = []
        for n, message in enumerate(statuses):
            if pace:
                await asyncio.sleep(max(0.0, began + n / pace - time.monotonic()))
                message = message.model_copy(update={"changed_at": datetime.now(UTC)})
            value = message.model_dump_json().encode()
            sends.append(await producer.send(settings.status_topic, value=value, key=message.key))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def bare_posts(receiver: Receiver, bodies: list[bytes], *, concurrency: int) -> float:
    """Seconds for a bare client to post every body to the receiver, `concurrency` at once."""
    receiver.expect(len(bodies))
    queue = iter(bodies)
    began = time.monotonic()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for body in queue:
                async with session.post(
                    f"http://127.0.0.1:{receiver.port}/bare", data=body
                ) as response:
                    await response.read()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.monotonic() - began


async def run(ctx: BenchContext) -> list[Result]:
    changes = ctx.pick(full=5_000, quick=1_000)
    pace, seconds = 20.0, ctx.pick(full=20.0, quick=8.0)
    prefix = await fresh_prefix(ctx, NAME)
    settings = ctx.env.settings_as(Settings, topic_prefix=prefix)
    (key,) = await ctx.env.create_keys(role=Role.reader, scope_code=DEMO_COUNTY, count=1)
    villages = await ctx.env.unit_codes(level="village", within=DEMO_COUNTY)
    async with receiving() as receiver:
        allowed = f"127.0.0.1:{receiver.port}"
        async with ctx.service(
            NAME, APP, SANWU_TOPIC_PREFIX=prefix, SANWU_WEBHOOKS_ALLOWED_TARGETS=allowed
        ) as service:
            await subscribe(service, key, receiver, SUBSCRIPTIONS)
            warm = [status(villages[0], "warm-up", v) for v in range(1, 6)]
            receiver.expect(len(warm) * SUBSCRIPTIONS)
            await produce(settings, warm)
            await asyncio.wait_for(receiver.arrived.wait(), DELIVERY_TIMEOUT)

            period = f"bench-{uuid.uuid4().hex[:8]}"
            burst = [
                status(villages[n % len(villages)], period, n // len(villages) + 1)
                for n in range(changes)
            ]
            deliveries = changes * SUBSCRIPTIONS
            ctx.step(f"{changes:,} changes to {SUBSCRIPTIONS} subscriptions, all at once")
            receiver.expect(deliveries)
            cpu = service.cpu_seconds()
            began = time.monotonic()
            await produce(settings, burst)
            await asyncio.wait_for(receiver.arrived.wait(), DELIVERY_TIMEOUT)
            took = time.monotonic() - began
            cpu = service.cpu_seconds() - cpu
            rate = deliveries / took

            lag_period = f"bench-lag-{uuid.uuid4().hex[:8]}"
            paced = [
                status(villages[n % len(villages)], lag_period, n // len(villages) + 1)
                for n in range(int(pace * seconds))
            ]
            ctx.step(f"lag: {pace:g} changes/s for {seconds:g} s")
            receiver.expect(len(paced) * SUBSCRIPTIONS)
            await produce(settings, paced, pace=pace)
            await asyncio.wait_for(receiver.arrived.wait(), DELIVERY_TIMEOUT)
            lags = sorted(receiver.lags_ms)
        body = status_change(burst[0]).body
        bare = deliveries / await bare_posts(
            receiver, [body] * deliveries, concurrency=SUBSCRIPTIONS * SLOTS
        )
    p50, p99 = percentile(lags, 50), percentile(lags, 99)
    ctx.step(f"{rate:,.0f} deliveries/s ({took:.1f} s), bare posts {bare:,.0f}/s")
    ctx.step(f"lag p50 {p50:.0f} ms, p99 {p99:.0f} ms over {len(lags):,} deliveries")
    ctx.latencies.append(LatencySeries(f"{NAME}, change to delivery", lags))
    ctx.note(
        f"{NAME}: {changes:,} status changes of {len(villages)} villages put on the service's "
        f"topic at once, each heard by {SUBSCRIPTIONS} subscriptions with endpoints on one "
        "aiohttp receiver in the bench process; timed from the first produced to the last "
        f"delivery answered; baseline a bare aiohttp client posting as many bodies, "
        f"{SUBSCRIPTIONS * SLOTS} at once (the service's slots). Lag: {pace:g} changes/s for "
        f"{seconds:g} s, each stamped as produced; from that stamp to the delivery's arrival."
    )
    return [
        Result(f"{NAME}: deliveries vs bare posts", rate, "deliveries/s", baseline=bare),
        Result(f"{NAME}: CPU per delivery", cpu / deliveries * 1e6, "µs"),
        Result(f"{NAME}: change to delivery p50", p50, "ms"),
        Result(
            f"{NAME}: change to delivery p99",
            p99,
            "ms",
            target=Target.at_most(LAG_TARGET_MS),
        ),
    ]


STAGE = Stage(NAME, "Webhook deliveries", run)
