"""Stage: the sustained pipeline. Intake (relay on), evaluation and reporting run as uvicorn
processes on topics of their own; a county's system posts a backlog in the ledger's mix, in
batches, as fast as intake takes them, and the bench times until reporting shows the last
change. The same topic is then rebuilt (`services.evaluation.rebuild.run.rebuild`, without its
swap), which gives the baseline of evaluation's live rate and checks that the live statuses and
indicators equal the rebuilt ones.

The events: `bench.backlog`.

Timed: from the first batch posted until intake's outbox is empty, evaluation has committed
every message of the topic, its three outboxes are empty and reporting's three consumer groups
have nothing left to read (polled every 0.1 s). End to end = events accepted over that time.
Evaluation's live rate = events applied over the time from the first batch posted until its
last commit: it drains a backlog that it shares the machine with intake for at first.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from bench.backlog import BATCH_SIZE, ledger_mix
from bench.environment import DEMO_COUNTY
from bench.load import Refused, client_session
from bench.pipeline import BackendCpu, fresh_prefix, scalar
from bench.report import Result, Target
from bench.services import Service, memory_mib
from bench.stage import BenchContext, Stage
from services.evaluation.config import EvaluationSettings
from services.evaluation.rebuild.run import rebuild
from services.reporting.config import ReportingSettings
from shared import kafka
from shared.access.models import Role
from shared.campaign import system_now

NAME = "sustained pipeline"
INTAKE_APP = "services.intake.main:create_app"
EVALUATION_APP = "services.evaluation.main:create_app"
REPORTING_APP = "services.reporting.main:create_app"
CLIENTS = 4
UNLIMITED = "1000000000/second"
POLL_SECONDS = 0.1
DRAIN_TIMEOUT = 1800.0
OUTBOXES = ("outbox", "indicator_outbox", "warning_outbox")


@dataclass
class Timeline:
    """When each part of the pipeline was done, in seconds from the first batch posted."""

    posted: float = 0.0
    evaluated: float = 0.0
    shown: float = 0.0
    evaluated_when_posted: int = 0  # messages evaluation had applied when posting ended
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds, applied)


@dataclass
class Measured:
    accepted: int
    messages: int
    timeline: Timeline
    rebuild_rate: float
    cpu: dict[str, float]  # seconds used meanwhile by each service and the database's backends
    evaluation_peak: float  # MiB resident at most (VmHWM)
    differences: int

    @property
    def end_to_end_rate(self) -> float:
        return self.accepted / self.timeline.shown

    @property
    def live_rate(self) -> float:
        return self.messages / self.timeline.evaluated


async def post_batches(url: str, *, key: str, bodies: list[bytes]) -> int:
    """Post every body with CLIENTS clients, each its next one as soon as the last is
    answered; returns the events accepted (repeats are answered as duplicates)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    queue = iter(bodies)
    accepted = 0
    async with client_session(CLIENTS) as session:

        async def client() -> None:
            nonlocal accepted
            for body in queue:
                async with session.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                    if response.status != 200:
                        raise Refused(response.status)
                results = json.loads(answer)["results"]
                accepted += sum(1 for r in results if r["status"] == "accepted")

        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return accepted


class Progress:
    """What evaluation has applied and what is still on its way to reporting, read with one
    admin client and one group-less consumer kept for the whole stage (polled often)."""

    def __init__(self, ctx: BenchContext, prefix: str) -> None:
        self.ctx = ctx
        self.settings = ctx.env.settings_as(EvaluationSettings, topic_prefix=prefix)
        reporting = ReportingSettings(topic_prefix=prefix)
        self.followed = [
            (reporting.status_topic, reporting.consumer_group),
            (reporting.indicator_topic, reporting.indicator_consumer_group),
            (reporting.warning_topic, reporting.warning_consumer_group),
        ]
        self._admin = kafka.admin(self.settings)
        self._reader = kafka.consumer(self.settings, group_id=None)
        self._partitions: dict[str, list[TopicPartition]] = {}

    async def __aenter__(self) -> "Progress":
        await self._admin.start()
        await self._reader.start()
        for topic in [self.settings.events_topic, *(t for t, _ in self.followed)]:
            self._partitions[topic] = await kafka.partitions_of(self.settings, topic)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._reader.stop()
        await self._admin.close()

    async def _offsets(self, topic: str, group: str) -> tuple[int, int]:
        """(messages on the topic, messages the group committed)."""
        partitions = self._partitions[topic]
        ends = await self._reader.end_offsets(partitions)
        committed = await kafka.committed_offsets(self._admin, group, partitions) or {}
        return sum(ends.values()), sum(committed.get(tp, 0) for tp in partitions)

    async def applied(self) -> tuple[int, int]:
        """(messages on the petition-event topic, messages evaluation committed)."""
        return await self._offsets(self.settings.events_topic, self.settings.group_id)

    async def intake_pending(self) -> int:
        return await scalar(self.ctx.env, "SELECT count(*) FROM intake.outbox")

    async def reporting_pending(self) -> int:
        """Rows in evaluation's outboxes and messages reporting has not applied."""
        pending = 0
        for table in OUTBOXES:
            pending += await scalar(self.ctx.env, f"SELECT count(*) FROM evaluation.{table}")
        for topic, group in self.followed:
            total, committed = await self._offsets(topic, group)
            pending += total - committed
        return pending


async def follow(progress: Progress, timeline: Timeline, posting: asyncio.Task[int]) -> None:
    """Until reporting has applied everything: note when evaluation was done, and when
    reporting was."""
    started = time.perf_counter()
    deadline = started + DRAIN_TIMEOUT
    shown_at = 0.0
    while time.perf_counter() < deadline:
        now = time.perf_counter() - started
        posted = posting.done()
        if posted and (failure := posting.exception()) is not None:
            raise failure
        # Intake's outbox first: what it published since is then among the topic's messages.
        unsent = await progress.intake_pending() if posted else None
        total, applied = await progress.applied()
        now = time.perf_counter() - started  # as observed: errs on the slow side
        timeline.samples.append((now, applied))
        if posted and not timeline.posted:
            timeline.posted, timeline.evaluated_when_posted = now, applied
        if not timeline.evaluated and unsent == 0 and applied == total:
            timeline.evaluated = now
        if timeline.evaluated and not await progress.reporting_pending():
            timeline.shown = time.perf_counter() - started
            return
        if now - shown_at > 5:
            progress.ctx.step(f"{now:5.1f} s: evaluation applied {applied:,} of {total:,}")
            shown_at = now
        await asyncio.sleep(POLL_SECONDS)
    raise TimeoutError(f"the pipeline did not drain in {DRAIN_TIMEOUT:g} s")


async def idle(progress: Progress) -> None:
    """Until what the services found on start-up is done (earlier stages' outbox rows)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not await progress.reporting_pending():
            return
        await asyncio.sleep(0.5)


@dataclass(frozen=True)
class Pipeline:
    intake: Service
    evaluation: Service
    reporting: Service

    def cpu_seconds(self) -> dict[str, float]:
        return {s.name: s.cpu_seconds() for s in (self.intake, self.evaluation, self.reporting)}


@contextlib.asynccontextmanager
async def pipeline(ctx: BenchContext, prefix: str) -> AsyncIterator[Pipeline]:
    """Reporting, evaluation and intake (relay on, no rate limit) on the stage's topics."""
    topics = {"SANWU_TOPIC_PREFIX": prefix}
    async with (
        ctx.service("reporting", REPORTING_APP, **topics) as reporting,
        ctx.service("evaluation", EVALUATION_APP, **topics) as evaluation,
        ctx.service(
            "intake",
            INTAKE_APP,
            SANWU_INTAKE_RUN_RELAY="true",
            SANWU_RATE_LIMIT=UNLIMITED,
            **topics,
        ) as intake,
    ):
        yield Pipeline(intake, evaluation, reporting)


# While the backlog drains: called with evaluation's service, awaited after reporting caught
# up (`bench profile evaluation-sustained` samples evaluation with it).
Sampler = Callable[[Service], Awaitable[Callable[[], Awaitable[None]]]]


async def measure(ctx: BenchContext, count: int, *, sampler: Sampler | None = None) -> Measured:
    prefix = await fresh_prefix(ctx, "sustained")
    villages = await ctx.env.unit_codes(level="village", within=DEMO_COUNTY)
    # Corrections take effect only from a key evaluation knows; a county desk's is one.
    (key,) = await ctx.env.create_keys(role=Role.desk, scope_code=DEMO_COUNTY, count=1)
    batches = ledger_mix(count, villages, seed=count, now=system_now(), settled=2 * CLIENTS)
    bodies = [json.dumps({"events": batch}).encode() for batch in batches]
    ctx.step(f"{count:,} events of the ledger's mix in {len(bodies)} batches (setup)")
    async with ctx.env.db.engine.begin() as connection:  # what earlier stages left unsent
        await connection.exec_driver_sql("TRUNCATE intake.outbox")
    accepted = 0
    async with Progress(ctx, prefix) as progress, pipeline(ctx, prefix) as services:
        await idle(progress)
        evaluation = services.evaluation
        stop_sampling = await sampler(evaluation) if sampler is not None else None
        backends = BackendCpu(ctx.env)
        await backends.start()
        cpu_before = services.cpu_seconds()
        timeline = Timeline()
        ctx.step(f"posting with {CLIENTS} clients, as fast as intake takes them")
        posting = asyncio.create_task(
            post_batches(f"{services.intake.url}/v1/events/batch", key=key, bodies=bodies)
        )
        try:
            await follow(progress, timeline, posting)
        finally:
            if not posting.done():
                posting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                accepted = await posting
            if stop_sampling is not None:
                await stop_sampling()
        cpu = {n: c - cpu_before[n] for n, c in services.cpu_seconds().items()}
        cpu["PostgreSQL"] = await backends.seconds()
        messages = (await progress.applied())[0]
        evaluation_peak = memory_mib(evaluation)[1]
    ctx.step(
        f"{accepted:,} events accepted ({messages:,} messages); posted in "
        f"{timeline.posted:.1f} s, evaluation had applied {timeline.evaluated_when_posted:,}; "
        f"evaluated in {timeline.evaluated:.1f} s, shown by reporting in {timeline.shown:.1f} s; "
        "CPU per event: "
        + ", ".join(f"{name} {1e6 * seconds / messages:,.0f} µs" for name, seconds in cpu.items())
    )
    settings = ctx.env.settings_as(EvaluationSettings, topic_prefix=prefix)
    report = await rebuild(settings, clock=settings.clock(), swap=False)
    county = DEMO_COUNTY[:6]
    differences = [d for d in report.differences if d[0].startswith(county)]
    ctx.step(
        f"rebuild of the same topic: {report.events_per_second:,.0f} events/s "
        f"({report.seconds:.1f} s); {len(differences)} of the county's statuses and "
        "indicators differ from the live ones"
    )
    if differences:
        raise RuntimeError(f"live and rebuilt statuses differ: {differences[:5]}")
    return Measured(
        accepted=accepted,
        messages=messages,
        timeline=timeline,
        rebuild_rate=report.events_per_second,
        cpu=cpu,
        evaluation_peak=evaluation_peak,
        differences=len(differences),
    )


async def run(ctx: BenchContext) -> list[Result]:
    count = ctx.pick(full=100_000, quick=20_000)
    measured = await measure(ctx, count)
    timeline = measured.timeline
    ctx.note(
        f"{NAME}: {count:,} events in the ledger test's mix (10 % repeats, 12 % corrections, "
        "3 % incidents, 15 % meetings, 5 % ratings, the rest visits dated over 2018 and the "
        "trailing year, 30 % with a petitioner's reference) for the villages of one county, "
        f"posted in batches of {BATCH_SIZE} by {CLIENTS} clients as fast as intake (relay on) "
        "takes them, with evaluation and reporting running on topics of their own. End to end: "
        "events accepted over the time from the first batch to reporting having applied every "
        "status, indicator and warning change (polled). Live rate: messages evaluation applied "
        "over the time from the first batch to its last commit. The baseline is the rebuild "
        "(without swap) of the same topic, which also checks that the live statuses and "
        "indicators equal the rebuilt ones."
    )
    return [
        Result(
            f"{NAME}: end to end, posted → shown in reporting",
            measured.end_to_end_rate,
            "events/s",
            target=Target.at_least(3_000),
        ),
        Result(
            f"{NAME}: evaluation's live rate vs the rebuild",
            measured.live_rate,
            "events/s",
            baseline=measured.rebuild_rate,
            target=Target.ratio_at_least(0.1),
        ),
        Result(f"{NAME}: posted in", timeline.posted, "s"),
        Result(
            f"{NAME}: applied by evaluation while posting",
            timeline.evaluated_when_posted,
            "events",
        ),
        *(
            Result(f"{NAME}: {name} CPU per event", seconds / measured.messages * 1e6, "µs")
            for name, seconds in measured.cpu.items()
        ),
        Result(f"{NAME}: evaluation peak resident memory", measured.evaluation_peak, "MiB"),
    ]


STAGE = Stage("sustained-pipeline", "Sustained pipeline, a county's backlog", run)
