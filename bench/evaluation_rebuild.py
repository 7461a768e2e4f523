"""Stage 4: `sanwu evaluation rebuild` over a province's worth of petition events, against a raw
aiokafka consumer that reads the same topic and decodes every message the same way.

The events are put on a topic of their own as intake's relay would have published them (an
`EventRecord` in intake's canonical JSON, keyed by county, on a topic configured like the
petition-event topic), by a raw batch producer: producing is setup and is not timed. The
rebuild is the real one (`services.evaluation.rebuild.run.rebuild`, as the command runs it, swap
included) in a process of its own, started afresh as the command starts, and is timed as the
command reports it: from its start to the swapped result.
"""

import asyncio
import json
import multiprocessing
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from bench.pipeline import PROVINCE, ensure_province, state, villages_of
from bench.report import GrowthSeries, Result, Target
from bench.stage import BenchContext, Stage
from services.evaluation.config import EvaluationSettings
from services.evaluation.rebuild.loader import topic_reader
from services.evaluation.rebuild.report import RebuildReport
from services.evaluation.rebuild.run import rebuild
from shared import kafka
from shared import logging as sanwu_logging
from shared.access.models import Role
from shared.events import EventRecord

NAME = "evaluation rebuild"
DESTINATIONS_CLEAN = ("township", "county")
PARTITIONS = 6


@dataclass
class Mix:
    """Shares of the events: the rest are clean visits (counting against no unit). Meetings
    are the largest share, as a village's weekly meetings outnumber its visits."""

    counting_visits: float = 0.015
    incidents: float = 0.0005
    corrections: float = 0.005
    meetings: float = 0.6
    ratings: float = 0.03


RATINGS = ("satisfied", "satisfied", "basically_satisfied", "dissatisfied")
SOURCES = ("petitioner", "third_party", "representative")


def _canonical(record: dict[str, object]) -> bytes:
    # intake's own encoding (services/intake/service.py): sorted keys, no spaces
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_messages(
    count: int, villages: list[str], *, seed: int, key_id: str, mix: Mix | None = None
) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of `count` EventRecords over `villages`, keyed by county, as accepted with
    the key `key_id`: mostly meetings and clean visits, some counting visits, incidents and
    ratings, and corrections (voids and re-attributions) of events published before them."""
    mix = mix or Mix()
    rng = random.Random(seed)
    counting = mix.counting_visits
    incident = counting + mix.incidents
    correction = incident + mix.corrections
    meeting = correction + mix.meetings
    rating = meeting + mix.ratings
    earlier: list[tuple[str, str]] = []  # (event id, village) of counting events so far
    for serial in range(count):
        village = villages[rng.randrange(len(villages))]
        event_id = f"{seed:08x}-0000-4000-8000-{serial:012x}"
        month = 5 + serial % 8
        occurred_at = f"2018-{month:02d}-{1 + serial % 28:02d}T{8 + serial % 10:02d}:30:00+08:00"
        draw = rng.random()
        event: dict[str, object]
        if draw < counting:
            event = {
                "type": "petition_visit",
                "destination_level": ("city", "province")[serial % 2],
                "headcount": 5 + serial % 4,
                "skip_level": serial % 3 == 0,
            }
        elif draw < incident:
            event = {"type": "incident", "kind": "other", "summary": "bench incident"}
        elif draw < correction and earlier:
            target_id, target_village = earlier[rng.randrange(len(earlier))]
            village = target_village
            if serial % 2:
                event = {"type": "event_voided", "target_event_id": target_id, "reason": "核减"}
            else:
                moved_to = villages[rng.randrange(len(villages))]
                event = {
                    "type": "event_reattributed",
                    "target_event_id": target_id,
                    "new_unit_code": moved_to,
                    "reason": "改属地",
                }
        elif correction <= draw < meeting:
            event = {
                "type": "screening_meeting",
                "attendees": 5 + serial % 7,
                "disputes_found": serial % 3,
                "disputes_resolved": serial % 2 * (serial % 3),
            }
        elif correction <= draw < rating:
            event = {
                "type": "satisfaction_rating",
                "rating": RATINGS[serial % len(RATINGS)],
                "source": SOURCES[serial % len(SOURCES)],
            }
        else:
            event = {
                "type": "petition_visit",
                "destination_level": DESTINATIONS_CLEAN[serial % 2],
                "headcount": 1 + serial % 4,
            }
        if draw < incident or event["type"] == "satisfaction_rating":
            earlier.append((event_id, village))  # counting events and ratings get corrected
        event |= {"event_id": event_id, "unit_code": village, "occurred_at": occurred_at}
        record = {
            "schema_version": 1,
            "event": event,
            "accepted_at": f"2018-{month:02d}-28T12:00:00.{serial % 1_000_000:06d}+00:00",
            "key_id": key_id,
        }
        yield f"{village[:6]}000000".encode(), _canonical(record)


async def produce(
    settings: EvaluationSettings,
    topic: str,
    count: int,
    *,
    seed: int,
    key_id: str,
    villages: list[str],
) -> float:
    """Put `count` events over `villages` on `topic` with a raw batch producer; returns the
    seconds it took."""
    partitioner = DefaultPartitioner()
    partitions = list(range(PARTITIONS))
    started = time.perf_counter()
    producer = AIOKafkaProducer(
        **kafka.client_options(settings),
        acks=1,
        linger_ms=20,
        max_batch_size=1024 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        batches = {p: producer.create_batch() for p in partitions}
        placed: dict[bytes, int] = {}
        sends: list[asyncio.Future[object]] = []
        checked = 0
        for key, value in event_messages(count, villages, seed=seed, key_id=key_id):
            if checked < 200:  # the generated records are what the rebuild accepts
                EventRecord.model_validate_json(value)
                checked += 1
            partition = placed.get(key)
            if partition is None:
                partition = placed[key] = partitioner(key, partitions, partitions)
            batch = batches[partition]
            if batch.append(key=key, value=value, timestamp=None) is None:
                batch.close()
                sends.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        for partition, batch in batches.items():
            if batch.record_count():
                batch.close()
                sends.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def consume_raw(settings: EvaluationSettings) -> tuple[int, float]:
    """The baseline: read the whole petition-event topic with the rebuild's reader and decode
    each message into an `EventRecord`; returns (messages, seconds)."""
    started = time.perf_counter()
    decoded = 0
    async with topic_reader(settings) as reader:
        async for records in reader.read_to(await reader.end_offsets(), chunk=20_000):
            for record in records:
                EventRecord.model_validate_json(record.value or b"")
                decoded += 1
    return decoded, time.perf_counter() - started


@dataclass
class Measured:
    events: int
    report: RebuildReport
    raw_seconds: float

    @property
    def rebuild_rate(self) -> float:
        return self.report.events_per_second

    @property
    def raw_rate(self) -> float:
        return self.events / self.raw_seconds

    @property
    def rebuild_us_per_event(self) -> float:
        return self.report.seconds / self.events * 1e6

    @property
    def raw_us_per_event(self) -> float:
        return self.raw_seconds / self.events * 1e6


async def measure(ctx: BenchContext, count: int, villages: list[str] | None = None) -> Measured:
    """Produce `count` events over `villages` (by default the province's) to a topic of their
    own, then time the baseline and the rebuild over it (the baseline first, so both read a
    topic the broker has seen once)."""
    if villages is None:
        await ensure_province(ctx)
        villages = villages_of(PROVINCE)
    prefix = f"{ctx.env.topic_prefix}rebuild-{count}."
    settings = ctx.env.settings_as(EvaluationSettings, topic_prefix=prefix)
    topic = await ctx.env.scratch_topic(
        settings.events_topic.removeprefix(ctx.env.topic_prefix),
        like=ctx.env.settings().events_topic,
    )
    # Corrections take effect only from a key evaluation knows (docs/domain.md section 4).
    [key] = await ctx.env.create_keys(role=Role.admin, scope_code=None, count=1)
    key_id = key.split("_")[1]
    produce_seconds = await produce(
        settings, topic, count, seed=count, key_id=key_id, villages=villages
    )
    ctx.step(f"{count:,} events produced to {topic} in {produce_seconds:.1f} s (setup)")
    decoded, raw_seconds = await consume_raw(settings)
    if decoded != count:
        raise RuntimeError(f"the raw consumer decoded {decoded} messages, not {count}")
    ctx.step(f"raw consumer: {count / raw_seconds:,.0f} events/s ({raw_seconds:.2f} s)")
    report = await rebuild_apart(settings)
    if report.messages != count or report.skipped:
        raise RuntimeError(
            f"the rebuild read {report.messages} messages and skipped {report.skipped}, of {count}"
        )
    ctx.step(
        f"rebuild: {report.events_per_second:,.0f} events/s ({report.seconds:.2f} s), "
        f"{report.statuses:,} statuses, {report.indicators:,} indicators, "
        f"{len(report.differences):,} changed; "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report.phases.items())
    )
    state(ctx).rebuilt_events = count
    return Measured(count, report, raw_seconds)


async def rebuild_apart(settings: EvaluationSettings) -> RebuildReport:
    """`rebuild` with its swap in a process of its own, spawned afresh as the command starts:
    its memory figures are then the rebuild's own, not those of the bench's process, which
    after the stages before holds several hundred MiB that readers forked from it would
    count as theirs."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=rebuild_process, args=(settings, sender), name="rebuild")
    process.start()
    sender.close()
    try:
        report: RebuildReport | None = await asyncio.to_thread(receiver.recv)
    except EOFError:  # it ended without a report
        report = None
    finally:
        await asyncio.to_thread(process.join)
        receiver.close()
    if report is None or process.exitcode != 0:
        raise RuntimeError(f"the rebuild's process failed (exit code {process.exitcode})")
    return report


def rebuild_process(settings: EvaluationSettings, answer: Connection) -> None:
    sanwu_logging.configure("WARNING", json=False)  # as the bench's own process
    answer.send(asyncio.run(rebuild(settings, clock=settings.clock(), swap=True)))


def full_size(ctx: BenchContext) -> int:
    return ctx.pick(full=1_000_000, quick=100_000)


async def ensure_rebuilt(ctx: BenchContext) -> None:
    """Evaluation's tables hold a rebuild of the province (a quick-size one if stage 4 did not
    run in this run)."""
    if not state(ctx).rebuilt_events:
        ctx.step("no rebuild in this run yet: rebuilding 100,000 events of the province (setup)")
        await measure(ctx, 100_000)


async def run(ctx: BenchContext) -> list[Result]:
    count = full_size(ctx)
    measured = await measure(ctx, count)
    state(ctx).rebuild_points[count] = (measured.rebuild_us_per_event, measured.raw_us_per_event)
    ctx.note(
        f"{NAME}: {count:,} events (60 % village meetings, 3 % ratings, 1.5 % counting visits, "
        "0.05 % incidents, 0.5 % corrections, the rest clean visits) over the 30,000 villages "
        "of a generated province, produced as "
        "intake publishes them (EventRecord JSON keyed by county) to a topic of their own; the "
        "rebuild is `services.evaluation.rebuild.run.rebuild` with its swap, in a process of its "
        "own spawned as the command starts (since 2026-12-07; before, it ran in the bench's own "
        "process, whose memory its figures and its readers' counted), timed from its start "
        "to the swapped tables as `sanwu evaluation rebuild` reports it. The baseline is a bare "
        "aiokafka consumer with the rebuild's fetch settings decoding every message into an "
        "EventRecord."
    )
    return [
        Result(
            f"{NAME}: {count:,} events",
            measured.rebuild_rate,
            "events/s",
            target=Target.at_least(10_000),
        ),
        Result(
            f"{NAME}: vs raw consumer + decode",
            measured.rebuild_rate,
            "events/s",
            baseline=measured.raw_rate,
            target=Target.ratio_at_least(0.2),
        ),
        Result(f"{NAME}: statuses computed", measured.report.statuses, "statuses"),
        Result(f"{NAME}: indicators computed", measured.report.indicators, "indicators"),
        Result(
            f"{NAME}: rebuild's peak resident memory", mib(measured.report.peak_resident), "MiB"
        ),
        Result(
            f"{NAME}: largest reader's peak resident memory",
            mib(measured.report.readers_peak_resident),
            "MiB",
        ),
    ]


def mib(size: int) -> float:
    return size / 2**20


def growth_series(points: dict[int, tuple[float, float]]) -> list[GrowthSeries]:
    ordered = sorted(points.items())
    return [
        GrowthSeries(
            "evaluation rebuild, by events", "µs per event", [(n, c[0]) for n, c in ordered]
        ),
        GrowthSeries(
            "raw consumer + decode, by events", "µs per event", [(n, c[1]) for n, c in ordered]
        ),
    ]


STAGE = Stage("evaluation-rebuild", "Evaluation rebuild", run)
