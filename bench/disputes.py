"""Stage: disputes of counted events (services/cases), the two steps every dispute takes: filed
by a desk of the event's county, then decided by the county's bureau (rejected, with a reason).
Each under `ctx.clients` clients in a closed loop (a key each), each request naming a dispute or
event of its own, against the same service's /healthz at the same concurrency, in turns.

The events disputed are put straight into `cases.event`, as the service's consumer keeps them
from the petition-event topic (its own statement), accepted now in the demo county's villages;
the calendar is made to cover this year and the next, as an operator loads a year. The service
runs with its consumer and its relay, which publishes every step to the disputes topic: each
step's publishing is part of the cost, and the topic is checked to hold every step."""

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date

import orjson

from bench.environment import DEMO_COUNTY, BenchEnvironment
from bench.load import Refused, client_session, closed_loop
from bench.pipeline import BackendCpu, fresh_prefix
from bench.report import LatencySeries, Result
from bench.reporting import Costed, combined
from bench.services import Service
from bench.stage import BenchContext, Stage
from services.cases.config import CasesSettings
from services.cases.disputes.repository import EventRepository, EventRow
from shared.access.models import Role
from shared.calendar.repository import CalendarRepository
from shared.calendar.rules import local_day
from shared.calendar.seed import CalendarDay
from shared.campaign import system_now

NAME = "disputes"
CASES_APP = "services.cases.main:create_app"
ROUNDS = 2  # slices of each step, in turns with /healthz
# A slice is planned to take at most 1 / MARGIN of the requests left at the best rate seen, so
# that the clients never run out of disputes or events while it lasts.
MARGIN = 2.0
SHORTEST_SLICE = 0.3  # seconds
WARMUP_SECONDS = 0.5
PUBLISH_TIMEOUT = 120.0
STATEMENT = "来访事项已于当日办结，不属于本村信访事项"
REASON = "经核查，来访登记属实"


@dataclass(frozen=True, slots=True)
class Call:
    """One request of a step: the dispute it files or decides."""

    dispute_id: uuid.UUID
    path: str
    body: bytes


@dataclass
class Work:
    """A step's requests, each sent once; the disputes it took and the first refusals."""

    left: deque[Call]
    done: list[uuid.UUID] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


class UsedUp(RuntimeError):
    pass


# --- the events and the calendar --------------------------------------------------------------


async def cover_calendar(env: BenchEnvironment) -> list[int]:
    """This year and the next in the calendar: a year the holiday package lacks is loaded as
    an operator loads one (New Year's Day off, the rest Monday to Friday). Returns those
    loaded."""
    this_year = local_day(system_now()).year
    async with env.db.session() as session:
        calendar = await CalendarRepository.from_session(session)
        covered = {year.year for year in await calendar.years()}
        missing = [year for year in (this_year, this_year + 1) if year not in covered]
        if missing:
            days = [CalendarDay(date(year, 1, 1), False, "元旦") for year in missing]
            await calendar.put(days, source=f"bench {env.run_id}", seeding=False)
    return missing


async def put_events(env: BenchEnvironment, count: int) -> list[uuid.UUID]:
    """`count` petition visits accepted now in the demo county's villages, kept as the
    service's consumer keeps what it reads; returns their ids."""
    villages = await env.unit_codes(level="village", within=DEMO_COUNTY)
    now = system_now()
    rows = [
        EventRow(
            event_id=uuid.uuid4(),
            type="petition_visit",
            unit_code=villages[serial % len(villages)],
            accepted_at=now,
            reported_at=None,
            target_event_id=None,
            new_unit_code=None,
        )
        for serial in range(count)
    ]
    async with env.db.connection() as connection:
        kept = await EventRepository(connection).put(rows)
    if kept != count:
        raise RuntimeError(f"{kept:,} of {count:,} events kept")
    return [row.event_id for row in rows]


def filings(events: list[uuid.UUID]) -> Work:
    calls = []
    for event_id in events:
        dispute_id = uuid.uuid4()
        body = {
            "dispute_id": str(dispute_id),
            "event_id": str(event_id),
            "grounds": "facts",
            "statement": STATEMENT,
        }
        calls.append(Call(dispute_id, "/v1/disputes", orjson.dumps(body)))
    return Work(deque(calls))


def decisions(disputes: list[uuid.UUID]) -> Work:
    body = orjson.dumps({"decision": "reject", "reason": REASON})
    return Work(deque(Call(d, f"/v1/disputes/{d}/decide", body) for d in disputes))


# --- the loads --------------------------------------------------------------------------------


async def step_load(
    ctx: BenchContext,
    service: Service,
    work: Work,
    *,
    keys: list[str],
    answer: int,
    seconds: float,
    headers: dict[str, str] | None = None,
) -> Costed:
    """One client per key in a closed loop, each sending the next of the work's requests;
    `answer` is the status of a step taken."""
    sent = [
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"} | (headers or {})
        for key in keys
    ]
    async with client_session(len(keys)) as session:

        async def send(worker: int) -> int:
            if not work.left:
                raise UsedUp(f"the requests ran out: {len(work.done):,} taken")
            call = work.left.popleft()
            url = service.url + call.path
            async with session.post(url, data=call.body, headers=sent[worker]) as response:
                text = await response.read()
                if response.status != answer:
                    if len(work.refused) < 5:
                        work.refused.append(f"HTTP {response.status}: {text[:400]!r}")
                    raise Refused(response.status)
            work.done.append(call.dispute_id)
            return 1

        return await costed(ctx, service, send, clients=len(keys), seconds=seconds)


async def healthz_load(
    ctx: BenchContext, service: Service, *, clients: int, seconds: float
) -> Costed:
    async with client_session(clients) as session:

        async def send(_: int) -> int:
            async with session.get(f"{service.url}/healthz") as response:
                await response.read()
                if response.status != 200:
                    raise Refused(response.status)
            return 1

        return await costed(ctx, service, send, clients=clients, seconds=seconds)


async def costed(
    ctx: BenchContext,
    service: Service,
    send: Callable[[int], Awaitable[int]],
    *,
    clients: int,
    seconds: float,
) -> Costed:
    backends = BackendCpu(ctx.env)
    await backends.start()
    load = await closed_loop(send, concurrency=clients, seconds=seconds, server=service)
    return Costed(load, await backends.seconds())


async def in_turns(
    ctx: BenchContext,
    service: Service,
    work: Work,
    step: Callable[[float], Awaitable[Costed]],
    *,
    seconds: float,
) -> tuple[Costed, Costed]:
    """A warm-up, then the step and /healthz in turns for `seconds` each, or less when the
    step's requests would run out: each slice is planned from the best rate seen so far."""
    rate = (await step(WARMUP_SECONDS)).load.requests_per_second
    await healthz_load(ctx, service, clients=ctx.clients, seconds=WARMUP_SECONDS)
    steps: list[Costed] = []
    bare: list[Costed] = []
    for _ in range(ROUNDS):
        planned = min(seconds / ROUNDS, len(work.left) / (MARGIN * max(rate, 1.0)))
        if planned < SHORTEST_SLICE:
            break
        steps.append(await step(planned))
        bare.append(await healthz_load(ctx, service, clients=ctx.clients, seconds=planned))
        rate = max(rate, steps[-1].load.requests_per_second)
    if not steps:
        raise RuntimeError(f"{len(work.left):,} requests left after the warm-up: too few to time")
    if work.refused:
        raise RuntimeError("refused: " + "; ".join(work.refused))
    return combined(steps), combined(bare)


async def wait_published(ctx: BenchContext, *, topic: str, steps: int) -> float:
    """Until the disputes topic holds every step; returns the seconds it took from now."""
    began = time.monotonic()
    while (published := await ctx.env.topic_size(topic)) < steps:
        if time.monotonic() - began > PUBLISH_TIMEOUT:
            raise TimeoutError(f"{published:,} of {steps:,} steps on {topic}")
        await asyncio.sleep(0.1)
    return time.monotonic() - began


# --- the stage --------------------------------------------------------------------------------


async def timed_step(
    ctx: BenchContext,
    service: Service,
    work: Work,
    *,
    label: str,
    keys: list[str],
    answer: int,
    seconds: float,
    topic: str,
    published: int,
    headers: dict[str, str] | None = None,
) -> tuple[Costed, Costed]:
    """A step timed against /healthz, then waited for until the topic holds every step (those
    `published` before and this step's)."""
    ctx.step(f"{label}: {ctx.clients} clients")

    def step(seconds: float) -> Awaitable[Costed]:
        return step_load(
            ctx, service, work, keys=keys, answer=answer, seconds=seconds, headers=headers
        )

    served, bare = await in_turns(ctx, service, work, step, seconds=seconds)
    ctx.step(f"{label}: {served.load.describe('requests/s')}")
    ctx.step(f"{label}, /healthz: {bare.load.describe('requests/s')}")
    steps = published + len(work.done)
    behind = await wait_published(ctx, topic=topic, steps=steps)
    ctx.step(f"{label}: {steps:,} steps on the disputes topic {behind:.1f} s after the last")
    ctx.latencies.append(LatencySeries(f"{NAME}, {label}", served.load.latencies_ms))
    return served, bare


async def run(ctx: BenchContext) -> list[Result]:
    count = ctx.pick(full=20_000, quick=2_000)
    seconds = ctx.pick(full=15.0, quick=4.0)
    loaded = await cover_calendar(ctx.env)
    if loaded:
        ctx.step(f"calendar: {', '.join(map(str, loaded))} loaded (New Year's Day off)")
    filing = filings(await put_events(ctx.env, count))
    ctx.step(f"{count:,} counted events of {DEMO_COUNTY} put in cases.event")
    desks = await ctx.env.create_keys(role=Role.desk, scope_code=DEMO_COUNTY, count=ctx.clients)
    bureaus = await ctx.env.create_keys(role=Role.bureau, scope_code=DEMO_COUNTY, count=ctx.clients)
    prefix = await fresh_prefix(ctx, NAME)
    topic = ctx.env.settings_as(CasesSettings, topic_prefix=prefix).disputes_topic
    async with ctx.service("cases", CASES_APP, SANWU_TOPIC_PREFIX=prefix) as service:
        filed = await timed_step(
            ctx,
            service,
            filing,
            label="filing (desks of the county)",
            keys=desks,
            answer=201,
            seconds=seconds,
            topic=topic,
            published=0,
        )
        deciding = decisions(filing.done)
        decided = await timed_step(
            ctx,
            service,
            deciding,
            label="deciding (the county's bureau)",
            keys=bureaus,
            answer=200,
            seconds=seconds,
            topic=topic,
            published=len(filing.done),
            headers={"If-Match": '"1"'},
        )
    ctx.note(
        f"{NAME}: {count:,} petition visits of the demo county's villages put in cases.event "
        "(the consumer's own statement), accepted now; the calendar covering this year and the "
        f"next. {ctx.clients} clients in a closed loop, a key each (desks of the county to "
        "file, its bureau to decide), each request a dispute of its own: filed (grounds "
        "`facts`), then each filed dispute rejected with a reason (If-Match 1). The service "
        "runs its consumer and its relay (every step published to the disputes topic, checked "
        "to hold them all). Each step is timed after a warm-up in slices taken in turns with "
        "the service's /healthz at the same concurrency (the baseline), each slice shortened "
        "so the events or disputes last. CPU: the service's and PostgreSQL's."
    )
    return figures("filing", *filed) + figures("deciding", *decided)


def figures(step: str, served: Costed, bare: Costed) -> list[Result]:
    name = f"{NAME}: {step}"
    return [
        Result(
            name,
            served.load.items_per_second,
            "requests/s",
            baseline=bare.load.requests_per_second,
        ),
        Result(f"{name} p50", served.load.latency(50), "ms", baseline=bare.load.latency(50)),
        Result(f"{name} p99", served.load.latency(99), "ms", baseline=bare.load.latency(99)),
        Result(
            f"{name}: CPU per request",
            served.cpu_per_request_us,
            "µs",
            baseline=bare.cpu_per_request_us,
        ),
    ]


STAGE = Stage(NAME, "Disputes, filing and deciding", run)
