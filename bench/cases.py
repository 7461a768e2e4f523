"""Stage: cases (信访事项, services/cases) of the demo county: registered by its desks one at a
time and in batches of 1,000, taken on by the county's 民政 (routed, accepted, replied, each step
dated over the trailing year, so the rates read every kind of clock: met, late, overdue, still
running), then its rolling case rates read by 50 readers. Loads are timed against the same
service's /healthz at the same concurrency; every step is checked on the cases topic."""

import asyncio
import random
import time
import uuid
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from bench.disputes import (
    CASES_APP,
    Call,
    Work,
    cover_calendar,
    healthz_load,
    in_turns,
    step_load,
    wait_published,
)
from bench.environment import DEMO_COUNTY, ROOT
from bench.load import CpuMeter, LoadResult, client_session
from bench.pipeline import BackendCpu, fresh_prefix, scalar
from bench.report import LatencySeries, Result, Target
from bench.reporting import Costed, http_load, turns
from bench.services import Service
from bench.stage import BenchContext, Stage
from services.cases.config import CasesSettings
from shared.access import service as access_service
from shared.access.models import Role
from shared.campaign import SHANGHAI, system_now
from shared.registry.bodies import BodyRepository, load_bodies

NAME = "cases"
DEMO_BODIES = ROOT / "data" / "demo-bodies.csv"
BODY = "民政"
BATCH = 1_000
BATCH_CLIENTS = 2  # batches take the steps' turn one after another: two keep one waiting
READERS = 50
AFRESH = 10  # rates read right after a step, each computed again
REPEAT_EVERY = 20
CATEGORIES = ("土地征收", "劳动争议", "环境污染", "拆迁安置", "社会保障", "医疗纠纷")
SUMMARY = "反映征地补偿款未足额发放，要求依法处理"
TAKEN = {"route": "routed", "accept": "accepted", "reply": "replied"}


@dataclass(frozen=True, slots=True)
class Step:
    """A step to take on a registered case: by a desk or by the body, at If-Match `version`."""

    case_id: str
    path: str
    body: bytes
    version: int
    by_body: bool


@dataclass
class County:
    """The planned cases: their registrations, in order, and their steps in waves (every
    routing, then every acceptance, then every reply)."""

    registrations: list[dict[str, Any]]
    waves: list[list[Step]]

    @property
    def steps(self) -> int:
        return sum(len(wave) for wave in self.waves)


def stamp(at: datetime) -> str:
    return at.astimezone(SHANGHAI).isoformat()


def plan(count: int, units: list[str], now: datetime, rng: random.Random) -> County:
    registrations: list[dict[str, Any]] = []
    waves: list[list[Step]] = [[], [], []]
    for serial in range(count):
        received = now - timedelta(days=rng.uniform(0.05, 360))
        category = CATEGORIES[serial % len(CATEGORIES)]
        petitioner = f"bench-petitioner-{serial}"
        if serial % REPEAT_EVERY == REPEAT_EVERY - 1:  # a repeat of the one before
            before = registrations[-1]
            category, petitioner = before["category"], before["petitioner_ref"]
        case_id = str(uuid.uuid4())
        body: dict[str, Any] = {
            "case_id": case_id,
            "unit_code": units[serial % len(units)],
            "received_at": stamp(received),
            "channel": "visit" if serial % 3 else "letter",
            "category": category,
            "petitioner_ref": petitioner,
            "headcount": 1 + serial % 4,
            "summary": SUMMARY,
        }
        registrations.append(body)
        if serial % REPEAT_EVERY < REPEAT_EVERY - 2:  # neither of a pair takes steps
            for step in steps_of(case_id, received, now, rng):
                waves[step.version - 1].append(step)
    return County(registrations, waves)


def steps_of(case_id: str, received: datetime, now: datetime, rng: random.Random) -> list[Step]:
    """Routed (60 %), accepted (45 %), replied (25 %), each some days after the one before;
    none later than now."""
    share = rng.random()
    route_at = received + timedelta(days=rng.uniform(0.2, 20))
    accept_at = route_at + timedelta(days=rng.uniform(0.2, 18))
    reply_at = accept_at + timedelta(days=rng.uniform(3, 75))
    planned: list[tuple[float, datetime, str, dict[str, Any], bool]] = [
        (0.60, route_at, "route", {"to": {"unit_code": DEMO_COUNTY, "body": BODY}}, False),
        (0.45, accept_at, "accept", {"reason": "属于本部门职责"}, True),
        (0.25, reply_at, "reply", {"outcome": "explain", "text": "已依政策解释"}, True),
    ]
    steps = []
    for version, (cut, at, path, body, by_body) in enumerate(planned, start=1):
        if share >= cut or at > now - timedelta(minutes=5):
            break
        fields = body | {"at": stamp(at)}
        if path == "accept":
            fields["notified_at"] = stamp(min(at + timedelta(days=rng.uniform(0, 2)), now))
        steps.append(Step(case_id, path, orjson.dumps(fields), version, by_body))
    return steps


# --- the service's data and keys ------------------------------------------------------------


async def prepare(ctx: BenchContext) -> dict[str, list[str]]:
    """The calendar covered, the demo bodies loaded, and the keys: desks and 民政 handlers of
    the county for the loads' clients, its readers for the rates."""
    loaded = await cover_calendar(ctx.env)
    if loaded:
        ctx.step(f"calendar: {', '.join(map(str, loaded))} loaded (New Year's Day off)")
    async with ctx.env.db.engine.begin() as connection:
        await load_bodies(await BodyRepository.from_connection(connection), DEMO_BODIES)
        handlers = [
            await access_service.create(
                connection, role=Role.handler, scope_code=DEMO_COUNTY, body=BODY
            )
            for _ in range(ctx.clients)
        ]
    desks = await ctx.env.create_keys(role=Role.desk, scope_code=DEMO_COUNTY, count=ctx.clients)
    readers = await ctx.env.create_keys(role=Role.reader, scope_code=DEMO_COUNTY, count=READERS)
    return {"desks": desks, "handlers": handlers, "readers": readers}


def calls(registrations: list[dict[str, Any]], *, size: int) -> Work:
    """The registrations one a request (`size` 1) or in batches of `size`."""
    path = "/v1/cases" if size == 1 else "/v1/cases/batch"
    return Work(
        deque(
            Call(
                uuid.UUID(registrations[start]["case_id"]),
                path,
                orjson.dumps(
                    registrations[start]
                    if size == 1
                    else {"cases": registrations[start : start + size]}
                ),
            )
            for start in range(0, len(registrations), size)
        )
    )


async def send_all(
    service: Service, calls: list[tuple[str, bytes, dict[str, str]]], *, clients: int, answer: int
) -> float:
    """Every (path, body, headers) posted once by `clients` clients; returns the seconds."""
    pending = iter(calls)
    began = time.monotonic()
    async with client_session(clients) as session:

        async def client() -> None:
            for path, body, headers in pending:
                sent = headers | {"Content-Type": "application/json"}
                async with session.post(service.url + path, data=body, headers=sent) as response:
                    text = await response.read()
                    if response.status != answer:
                        raise RuntimeError(f"{path}: HTTP {response.status}: {text[:400]!r}")

        await asyncio.gather(*(client() for _ in range(clients)))
    return time.monotonic() - began


async def register_rest(ctx: BenchContext, service: Service, keys: list[str], *works: Work) -> None:
    """What the timed loads left of the registrations, untimed."""
    calls = [
        (call.path, call.body, {"Authorization": f"Bearer {keys[n % len(keys)]}"})
        for n, call in enumerate(c for work in works for c in work.left)
    ]
    singles_left = [c for c in calls if c[0] == "/v1/cases"]
    batches_left = [c for c in calls if c[0] != "/v1/cases"]
    await send_all(service, singles_left, clients=ctx.clients, answer=201)
    await send_all(service, batches_left, clients=BATCH_CLIENTS, answer=200)


async def take_steps(
    ctx: BenchContext, service: Service, county: County, keys: dict[str, list[str]]
) -> None:
    for wave in county.waves:
        calls = []
        for n, step in enumerate(wave):
            key = keys["handlers" if step.by_body else "desks"][n % ctx.clients]
            headers = {"Authorization": f"Bearer {key}", "If-Match": f'"{step.version}"'}
            calls.append((f"/v1/cases/{step.case_id}/{step.path}", step.body, headers))
        seconds = await send_all(service, calls, clients=ctx.clients, answer=200)
        ctx.step(
            f"{len(wave):,} cases {TAKEN[wave[0].path]}: {len(wave) / seconds:,.0f} steps/s "
            f"({ctx.clients} clients)"
        )


# --- the rates -------------------------------------------------------------------------------


def rates_path() -> str:
    return f"/v1/reports/case-rates?root={DEMO_COUNTY}&period=rolling"


async def rates_afresh(service: Service, *, desk: str, reader: str) -> list[float]:
    """The rates read right after a registration: each computed again from every case."""
    took = []
    extra = plan(AFRESH, [DEMO_COUNTY], system_now(), random.Random()).registrations
    async with client_session(1) as session:
        for body in extra:
            headers = {"Authorization": f"Bearer {desk}"}
            async with session.post(service.url + "/v1/cases", json=body, headers=headers) as r:
                if r.status != 201:
                    raise RuntimeError(f"registering: HTTP {r.status}: {await r.text()}")
            began = time.perf_counter()
            headers = {"Authorization": f"Bearer {reader}"}
            async with session.get(service.url + rates_path(), headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"the county's rates: HTTP {r.status}")
            took.append((time.perf_counter() - began) * 1000)
    return took


# --- the stage --------------------------------------------------------------------------------


async def timed_singles(
    ctx: BenchContext, service: Service, work: Work, *, keys: list[str]
) -> tuple[Costed, Costed]:
    label = "registering one at a time"
    ctx.step(f"{label}: {len(keys)} clients")

    def step(seconds: float) -> Awaitable[Costed]:
        return step_load(ctx, service, work, keys=keys, answer=201, seconds=seconds)

    served, bare = await in_turns(ctx, service, work, step, seconds=ctx.pick(full=15, quick=4))
    ctx.step(f"{label}: {served.load.describe('requests/s')}")
    ctx.step(f"{label}, /healthz: {bare.load.describe('requests/s')}")
    ctx.latencies.append(LatencySeries(f"{NAME}, {label}", served.load.latencies_ms))
    return served, bare


async def timed_batches(
    ctx: BenchContext, service: Service, work: Work, *, keys: list[str], seconds: float
) -> Costed:
    """Batches sent by `len(keys)` clients, each starting its next until `seconds` have
    passed or none is left: a batch takes seconds, too long for slices in turns."""
    label = f"registering in batches of {BATCH:,}"
    ctx.step(f"{label}: {len(keys)} clients")
    latencies: list[float] = []
    began = time.perf_counter()
    meter = CpuMeter(service)
    postgres = BackendCpu(ctx.env)
    await postgres.start()
    async with client_session(len(keys)) as session:

        async def client(key: str) -> None:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            while work.left and time.perf_counter() - began < seconds:
                call = work.left.popleft()
                sent = time.perf_counter()
                async with session.post(
                    service.url + call.path, data=call.body, headers=headers
                ) as r:
                    answer = await r.read()
                    if r.status != 200 or b'"rejected"' in answer:
                        raise RuntimeError(f"a batch: HTTP {r.status}: {answer[:400]!r}")
                latencies.append((time.perf_counter() - sent) * 1000)
                work.done.append(call.dispute_id)

        await asyncio.gather(*(client(key) for key in keys))
    elapsed = time.perf_counter() - began
    load = LoadResult(len(latencies), len(latencies) * BATCH, elapsed, latencies, cpu=meter.read())
    costed = Costed(load, await postgres.seconds())
    ctx.step(f"{label}: {load.describe('cases/s')}")
    ctx.latencies.append(LatencySeries(f"{NAME}, {label}", latencies))
    return costed


async def run(ctx: BenchContext) -> list[Result]:
    count = ctx.pick(full=20_000, quick=4_000)
    keys = await prepare(ctx)
    villages = await ctx.env.unit_codes(level="village", within=DEMO_COUNTY)
    county = plan(count, villages, system_now(), random.Random(7))
    ctx.step(f"{count:,} cases planned, {county.steps:,} steps after registering")
    by_one = calls(county.registrations[: count // 4], size=1)
    by_batch = calls(county.registrations[count // 4 :], size=BATCH)
    prefix = await fresh_prefix(ctx, NAME)
    topic = ctx.env.settings_as(CasesSettings, topic_prefix=prefix).cases_topic
    async with ctx.service("cases", CASES_APP, SANWU_TOPIC_PREFIX=prefix) as service:
        one = await timed_singles(ctx, service, by_one, keys=keys["desks"])
        batched = await timed_batches(
            ctx,
            service,
            by_batch,
            keys=keys["desks"][:BATCH_CLIENTS],
            seconds=ctx.pick(full=60.0, quick=10.0),
        )
        await register_rest(ctx, service, keys["desks"], by_one, by_batch)
        registered = await scalar(ctx.env, "SELECT count(*) FROM cases.case")
        if registered != count:
            raise RuntimeError(f"{registered:,} of {count:,} cases registered")
        await take_steps(ctx, service, county, keys)
        behind = await wait_published(ctx, topic=topic, steps=count + county.steps)
        ctx.step(f"{count + county.steps:,} steps on the cases topic {behind:.1f} s after the last")
        afresh = await rates_afresh(service, desk=keys["desks"][0], reader=keys["readers"][0])
        ctx.step(f"rates computed afresh: {', '.join(f'{ms:.0f}' for ms in afresh)} ms")
        rates, bare = await timed_rates(ctx, service, keys["readers"])
    note(ctx, count, county)
    afresh.sort()
    return [
        *figures(f"{NAME}: registering one at a time", *one, unit="cases/s"),
        *figures(
            f"{NAME}: registering in batches of {BATCH:,} (latency per batch)",
            batched,
            None,
            unit="cases/s",
            per=BATCH,
        ),
        *figures(f"{NAME}: the county's rolling rates", rates, bare, unit="requests/s", p99=20),
        Result(f"{NAME}: the county's rates computed afresh, median", afresh[AFRESH // 2], "ms"),
        Result(f"{NAME}: the county's rates computed afresh, slowest", afresh[-1], "ms"),
    ]


async def timed_rates(
    ctx: BenchContext, service: Service, readers: list[str]
) -> tuple[Costed, Costed]:
    seconds = ctx.pick(full=15.0, quick=4.0)
    ctx.step(f"the county's rolling rates: {READERS} clients, in turns with /healthz")
    path = rates_path()
    await http_load(ctx, service, keys=readers, paths=[path], seconds=0.5)
    await healthz_load(ctx, service, clients=READERS, seconds=0.5)
    found = await turns(
        {
            "rates": lambda s: http_load(ctx, service, keys=readers, paths=[path], seconds=s),
            "healthz": lambda s: healthz_load(ctx, service, clients=READERS, seconds=s),
        },
        seconds=seconds,
        rounds=2,
    )
    ctx.step(f"rates: {found['rates'].load.describe('requests/s')}")
    ctx.step(f"rates, /healthz: {found['healthz'].load.describe('requests/s')}")
    ctx.latencies.append(LatencySeries(f"{NAME}, county rates", found["rates"].load.latencies_ms))
    return found["rates"], found["healthz"]


def figures(
    name: str,
    served: Costed,
    bare: Costed | None,
    *,
    unit: str,
    per: int = 1,
    p99: float | None = None,
) -> list[Result]:
    """Throughput, p50, p99 and CPU per item (a request's divided by `per`), each against the
    baseline's when there is one."""
    base = bare.load if bare else None
    return [
        Result(
            name,
            served.load.items_per_second,
            unit,
            baseline=base.requests_per_second if base else None,
        ),
        Result(
            f"{name} p50",
            served.load.latency(50),
            "ms",
            baseline=base.latency(50) if base else None,
        ),
        Result(
            f"{name} p99",
            served.load.latency(99),
            "ms",
            baseline=base.latency(99) if base else None,
            target=Target.at_most(p99) if p99 is not None else None,
        ),
        Result(
            f"{name}: CPU per {unit.split('/')[0].rstrip('s')}",
            served.cpu_per_request_us / per,
            "µs",
            baseline=bare.cpu_per_request_us if bare else None,
        ),
    ]


def note(ctx: BenchContext, count: int, county: County) -> None:
    ctx.note(
        f"{NAME}: {count:,} cases of the demo county's villages, received over the trailing "
        f"12 months, every {REPEAT_EVERY}th a repeat of the one before; then "
        f"{', '.join(f'{len(w):,} {TAKEN[w[0].path]}' for w in county.waves)} by the county's "
        f"desks and {BODY} ({ctx.clients} keys each), each step dated. A quarter registered "
        f"one at a time by {ctx.clients} desk clients in a closed loop, the rest in batches of "
        f"{BATCH:,} (POST /v1/cases/batch) by {BATCH_CLIENTS} clients; each timed after a warm-up "
        "in slices taken in turns with /healthz at the same concurrency, what the slices left "
        "registered untimed. The service runs its consumer and relays: every step is checked "
        f"on the cases topic. Rates: GET /v1/reports/case-rates?root={DEMO_COUNTY}&"
        f"period=rolling by {READERS} reader keys of the county in a closed loop, in turns with "
        "/healthz at the same concurrency; no step is taken meanwhile, so they are the service's "
        f"kept rates. 'Computed afresh': {AFRESH} reads by one client, each right after a "
        "registration, which makes the service compute them again from every case."
    )


STAGE = Stage(NAME, "Cases, registering and the county's rates", run)
