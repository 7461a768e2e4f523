"""Stage: the audit log (services/audit), the two figures its issue names; bench/README.md
says how each is measured.

- Appending: the audit service (uvicorn, its consumers on topics of their own) appends events
  put on its petition-event topic as intake's relay publishes them, a batch per transaction,
  signing checkpoints as the log grows; timed from the first event produced to the checkpoint
  covering the last, against a bare consumer decoding the same topic.
- Inclusion proofs at 50 clients over a log of 5,000,000 leaves and more, verified against the
  checkpoint first, against the same service's /healthz at the same concurrency.

The log is first filled outside the service, the fastest honest way: the leaves the consumer
makes of the same mix of events, their complete subtrees computed by `merkle.Frontier` from
the log's own frontier, COPied under the head's lock in the transaction that sets its size."""

import asyncio
import base64
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.partitioner import DefaultPartitioner

from bench.environment import DEMO_COUNTY, BenchEnvironment
from bench.evaluation_rebuild import PARTITIONS, consume_raw, event_messages
from bench.load import Refused, client_session, closed_loop
from bench.pipeline import BackendCpu, fresh_prefix, scalar
from bench.report import LatencySeries, Result, Target
from bench.reporting import Costed, turns
from bench.services import Service
from bench.stage import BenchContext, Stage
from services.audit import merkle
from services.audit.consumers import event_record_leaf
from services.audit.leaves import Leaf
from services.audit.repository import LogRepository
from services.audit.service import frontier_of
from services.evaluation.config import EvaluationSettings
from shared import kafka
from shared.access.models import Role
from shared.events import EventRecord

NAME = "audit"
AUDIT_APP = "services.audit.main:create_app"
CLIENTS = 50
FILL_CHUNK = 1 << 16  # leaves COPied at a time
FILL_KEY_ID = "b0a0d1700000"
# A uuid's shape, in a variant no generated event uses, so filled leaves are records of their own.
FILL_ID = "{run:08x}-0000-4000-a000-{serial:012x}"
PLACEHOLDER = "ffffffff-ffff-4fff-bfff-ffffffffffff"
FILL_KINDS = 512  # leaves of the event mix the filled ones are made like
POLL_SECONDS = 0.05
APPEND_TIMEOUT = 600.0
VERIFIED_PROOFS = 200
AT_LEAST = Target.at_least(20_000)  # leaves/s: intake's batch rate


def with_id(value: bytes, record_id: str) -> bytes:
    record = orjson.loads(value)
    record["event"]["event_id"] = record_id
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def consumers_leaf(value: bytes) -> bytes:
    """The leaf the consumer makes of a published event."""
    leaf = event_record_leaf(ConsumerRecord("", 0, 0, 0, 0, None, value, None, 0, 0, []))
    assert isinstance(leaf, Leaf), leaf
    return leaf.body


def filling_leaves(run: int, first: int, count: int) -> Iterator[tuple[str, str]]:
    """(record id, leaf text) of filled leaves `first` to `first + count`: the leaves the
    consumer makes of the appending events' mix (so of the same sizes), taken in turn from
    FILL_KINDS of them with each record's own id put in their place (held equal to the
    consumer's leaf on a sample)."""
    villages = [f"{DEMO_COUNTY[:6]}{n:06d}" for n in range(100201, 100221)]
    messages = [
        with_id(value, PLACEHOLDER)
        for _, value in history_messages(FILL_KINDS, villages, seed=run, key_id=FILL_KEY_ID)
    ]
    templates = [consumers_leaf(value).decode().split(PLACEHOLDER) for value in messages]
    for serial in range(first, first + count):
        record_id = FILL_ID.format(run=run, serial=serial)
        text = record_id.join(templates[serial % FILL_KINDS])
        if serial % 100_003 == 0:
            made = consumers_leaf(with_id(messages[serial % FILL_KINDS], record_id))
            if text.encode() != made:
                raise AssertionError(f"the filled leaf of {record_id} is not the consumer's")
        yield record_id, text


async def fill_log(env: BenchEnvironment, *, size: int, run: int) -> tuple[int, float]:
    """Fill the log to `size` leaves from wherever it stands, in one transaction under the
    head's lock; returns (leaves added, seconds)."""
    began = time.perf_counter()
    at = datetime.now(UTC)
    async with env.db.session() as session:
        log = await LogRepository.from_session(session)
        start = await log.lock()
        frontier = await frontier_of(log, start)
        for first in range(start, size, FILL_CHUNK):
            count = min(FILL_CHUNK, size - first)
            leaves = []
            nodes: list[tuple[int, int, bytes]] = []
            for index, (record_id, text) in enumerate(filling_leaves(run, first, count), first):
                leaves.append((index, "event", record_id, text, at))
                nodes += frontier.append(merkle.leaf_hash(text.encode()))
            await log.connection.copy_records_to_table(
                "leaf",
                schema_name="audit",
                columns=["leaf_index", "kind", "record_id", "body", "appended_at"],
                records=leaves,
            )
            await log.connection.copy_records_to_table(
                "node", schema_name="audit", columns=["level", "position", "hash"], records=nodes
            )
        await log.set_size(frontier.size)
    return max(0, size - start), time.perf_counter() - began


async def settle(env: BenchEnvironment) -> float:
    """VACUUM (ANALYZE), as autovacuum keeps a log that grew over months; returns seconds."""
    began = time.perf_counter()
    async with env.db.connection() as connection:
        await connection.execute("VACUUM (ANALYZE) audit.leaf, audit.node")
    return time.perf_counter() - began


# --- appending --------------------------------------------------------------------------------


def history_messages(
    count: int, villages: list[str], *, seed: int, key_id: str
) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of `count` EventRecords as intake publishes them (the evaluation rebuild
    stage's mix), under random version-4 ids as desks' systems make them: a log's index of
    record ids is written all over, not at its end."""
    rng = random.Random(seed)
    ids: dict[str, str] = {}

    def random_id(serial_id: str) -> str:
        if serial_id not in ids:
            ids[serial_id] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return ids[serial_id]

    for key, value in event_messages(count, villages, seed=seed, key_id=key_id):
        record = orjson.loads(value)
        event = record["event"]
        event["event_id"] = random_id(event["event_id"])
        if "target_event_id" in event:
            event["target_event_id"] = random_id(event["target_event_id"])
        yield key, orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


async def produce(settings: EvaluationSettings, messages: Iterator[tuple[bytes, bytes]]) -> float:
    """Put the messages on the petition-event topic in record batches, partitioned by their
    key as intake's relay's are; returns the seconds it took."""
    started = time.perf_counter()
    producer = AIOKafkaProducer(
        **kafka.client_options(settings), acks=1, max_batch_size=2**20, max_request_size=2**22
    )
    partitions, partition_of = list(range(PARTITIONS)), DefaultPartitioner()
    batches = {p: producer.create_batch() for p in partitions}
    sends: list[asyncio.Future[object]] = []

    async def send(partition: int) -> None:
        batches[partition].close()
        topic = settings.events_topic
        sends.append(await producer.send_batch(batches[partition], topic, partition=partition))
        batches[partition] = producer.create_batch()

    await producer.start()
    try:
        for checked, (key, value) in enumerate(messages):
            if checked < 200:  # what the consumer accepts
                EventRecord.model_validate_json(value)
            partition = partition_of(key, partitions, partitions)
            while batches[partition].append(key=key, value=value, timestamp=None) is None:
                await send(partition)
        for partition in partitions:
            if batches[partition].record_count():
                await send(partition)
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def wal_written(env: BenchEnvironment) -> int:
    """Bytes of WAL the server has written since it began (all databases)."""
    return await scalar(env, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")


async def wait_checkpointed(env: BenchEnvironment, size: int, *, timeout: float) -> float:
    """Until a checkpoint covers `size` leaves; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while (
        covered := await scalar(env, "SELECT coalesce(max(size), 0) FROM audit.checkpoint")
    ) < size:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no checkpoint of {size:,} leaves in {timeout:.0f} s ({covered:,})")
        await asyncio.sleep(POLL_SECONDS)
    return time.monotonic()


async def measure_appending(
    ctx: BenchContext, service: Service, *, prefix: str, count: int, key_id: str
) -> tuple[float, float, dict[str, float]]:
    """Events put on the service's petition-event topic as intake's relay publishes them: a
    few first (the consumers are then assigned and running), then `count`, timed from the
    first produced (made beforehand, so that producing costs the machine little) to the
    checkpoint that covers the last. Returns (seconds, the baseline's seconds, CPU seconds
    of the service and of PostgreSQL)."""
    settings = ctx.env.settings_as(EvaluationSettings, topic_prefix=prefix)
    villages = await ctx.env.unit_codes(level="village", within=DEMO_COUNTY)
    size = await scalar(ctx.env, "SELECT size FROM audit.head")
    await produce(settings, history_messages(100, villages, seed=1, key_id=key_id))
    await wait_checkpointed(ctx.env, size + 100, timeout=120)
    size = await scalar(ctx.env, "SELECT size FROM audit.head")
    messages = list(history_messages(count, villages, seed=2, key_id=key_id))
    backends = BackendCpu(ctx.env)
    await backends.start()
    service_cpu = service.cpu_seconds()
    wal = await wal_written(ctx.env)
    began = time.monotonic()
    produce_seconds = await produce(settings, iter(messages))
    ended = await wait_checkpointed(ctx.env, size + count, timeout=APPEND_TIMEOUT)
    cpu = {"audit": service.cpu_seconds() - service_cpu, "PostgreSQL": await backends.seconds()}
    wal = await wal_written(ctx.env) - wal
    ctx.step(f"WAL written while appending: {wal / count:,.0f} bytes per leaf (server-wide)")
    decoded, raw_seconds = await consume_raw(settings)
    if decoded != count + 100:
        raise RuntimeError(f"the raw consumer decoded {decoded:,} messages, not {count + 100:,}")
    ctx.step(f"produced in {produce_seconds:.1f} s")
    return ended - began, raw_seconds * count / decoded, cpu


# --- proofs -----------------------------------------------------------------------------------


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def verified_checkpoint(service: Service, key: str, rng: random.Random) -> int:
    """The latest checkpoint's size, once the proofs of random leaves, and of the first and
    the last, verify against its root with their leaves."""
    async with client_session(1) as session:

        async def get(path: str) -> dict[str, Any]:
            async with session.get(service.url + path, headers=bearer(key)) as response:
                if response.status != 200:
                    raise RuntimeError(f"{path}: HTTP {response.status}: {await response.text()}")
                found: dict[str, Any] = await response.json()
                return found

        checkpoint = await get("/v1/log/checkpoint")
        size, root = checkpoint["size"], base64.b64decode(checkpoint["root_hash"])
        for index in [0, size - 1, *(rng.randrange(size) for _ in range(VERIFIED_PROOFS))]:
            (entry,) = (await get(f"/v1/log/entries?start={index}&end={index + 1}"))["entries"]
            proof = await get(f"/v1/log/proof/inclusion?index={index}&size={size}")
            merkle.verify_inclusion(
                index=index,
                size=size,
                leaf=merkle.leaf_hash(entry["leaf"].encode()),
                proof=[base64.b64decode(h) for h in proof["hashes"]],
                root=root,
            )
    return size


async def transactions(env: BenchEnvironment) -> int:
    """Transactions of the run's database so far (a read outside one is one), as the server's
    statistics say (they lag by up to a second)."""
    return await scalar(
        env,
        "SELECT xact_commit + xact_rollback FROM pg_stat_database "
        "WHERE datname = current_database()",
    )


async def proof_load(
    ctx: BenchContext,
    service: Service,
    *,
    keys: list[str],
    size: int | None,
    seconds: float,
    rng: random.Random,
) -> Costed:
    """CLIENTS clients in a closed loop, each with a key of its own: the inclusion proof of a
    random leaf at `size`, or (size None) the service's /healthz."""
    headers = [bearer(key) for key in keys]
    async with client_session(len(keys)) as session:

        async def send(worker: int) -> int:
            if size is None:
                url = f"{service.url}/healthz"
            else:
                url = (
                    f"{service.url}/v1/log/proof/inclusion?index={rng.randrange(size)}&size={size}"
                )
            async with session.get(url, headers=headers[worker]) as response:
                await response.read()
                if response.status != 200:
                    raise Refused(response.status)
            return 1

        backends = BackendCpu(ctx.env)
        await backends.start()
        before = await transactions(ctx.env)
        load = await closed_loop(send, concurrency=len(keys), seconds=seconds, server=service)
        if size is not None:
            statements = await transactions(ctx.env) - before
            ctx.step(f"statements per proof: {statements / max(1, load.requests):.2f}")
        return Costed(load, await backends.seconds())


async def measure_proofs(
    ctx: BenchContext, service: Service, *, seconds: float
) -> tuple[int, Costed, Costed]:
    keys = await ctx.env.create_keys(role=Role.reader, scope_code=None, count=CLIENTS)
    rng = random.Random(9162)
    size = await verified_checkpoint(service, keys[0], rng)
    ctx.step(f"{VERIFIED_PROOFS + 2} proofs verified against the checkpoint of {size:,} leaves")
    for asked in (size, None):  # warm-up
        await proof_load(ctx, service, keys=keys, size=asked, seconds=1.0, rng=rng)
    loads = await turns(
        {
            "proofs": lambda s: proof_load(ctx, service, keys=keys, size=size, seconds=s, rng=rng),
            "healthz": lambda s: proof_load(ctx, service, keys=keys, size=None, seconds=s, rng=rng),
        },
        seconds=seconds,
        rounds=2,
    )
    return size, loads["proofs"], loads["healthz"]


# --- the stage --------------------------------------------------------------------------------


async def run(ctx: BenchContext) -> list[Result]:
    size = ctx.pick(full=5_000_000, quick=500_000)
    count = ctx.pick(full=200_000, quick=50_000)
    seconds = ctx.pick(full=12.0, quick=4.0)
    added, fill_seconds = await fill_log(ctx.env, size=size, run=int(ctx.env.run_id, 16))
    ctx.step(f"log filled to {size:,} leaves: {added:,} COPied in {fill_seconds:.1f} s (setup)")
    ctx.step(f"VACUUM (ANALYZE) of the log's tables in {await settle(ctx.env):.1f} s (setup)")
    prefix = await fresh_prefix(ctx, "audit")
    (desk,) = await ctx.env.create_keys(role=Role.desk, scope_code=DEMO_COUNTY, count=1)
    async with ctx.service("audit", AUDIT_APP, SANWU_TOPIC_PREFIX=prefix) as service:
        ctx.step(f"appending {count:,} events as the consumer reads them")
        took, raw_took, cpu = await measure_appending(
            ctx, service, prefix=prefix, count=count, key_id=desk.split("_")[1]
        )
        rate, raw = count / took, count / raw_took
        ctx.step(
            f"appended and checkpointed {rate:,.0f} leaves/s ({took:.1f} s); raw consumer + "
            f"decode {raw:,.0f}/s; CPU per leaf "
            + ", ".join(f"{n} {1e6 * s / count:,.0f} µs" for n, s in cpu.items())
        )
        ctx.step(f"inclusion proofs: {CLIENTS} clients, proofs and /healthz in turns")
        proven, proofs, healthz = await measure_proofs(ctx, service, seconds=seconds)
    ctx.step(f"proofs at {proven:,} leaves: {proofs.load.describe('requests/s')}")
    ctx.step(f"/healthz: {healthz.load.describe('requests/s')}")
    ctx.latencies += [
        LatencySeries(f"{NAME}, inclusion proof", proofs.load.latencies_ms),
        LatencySeries(f"{NAME}, /healthz", healthz.load.latencies_ms),
    ]
    ctx.note(
        f"{NAME}: the log filled to {size:,} leaves outside the service (the consumer's leaves "
        "of the events' mix, subtrees by merkle.Frontier, COPied under the head's lock), then "
        f"VACUUM (ANALYZE)d. Appending: {count:,} events of one county (one partition) under "
        "random ids, put on the service's topic as intake's relay publishes them; timed from "
        "the first produced to the checkpoint covering the last; baseline a bare consumer "
        f"decoding the same topic. Proofs: {CLIENTS} clients with a key each, a random leaf "
        "of the latest checkpoint each time, proofs verified against its root first; baseline "
        "the service's /healthz, in turns. CPU: the service's and PostgreSQL's."
    )
    log = f"{NAME}, a log of {size:,} leaves"
    served, bare = proofs.load, healthz.load
    return [
        Result(f"{NAME}: leaves appended and checkpointed", rate, "leaves/s", target=AT_LEAST),
        Result(f"{NAME}: appending vs raw consumer + decode", rate, "leaves/s", baseline=raw),
        Result(f"{NAME}: CPU per leaf appended", sum(cpu.values()) / count * 1e6, "µs"),
        Result(
            f"{log}: inclusion proofs vs /healthz",
            served.requests_per_second,
            "requests/s",
            baseline=bare.requests_per_second,
        ),
        Result(
            f"{log}: inclusion proof p99, {CLIENTS} clients",
            served.latency(99),
            "ms",
            baseline=bare.latency(99),
            target=Target.at_most(20),
        ),
        Result(
            f"{log}: CPU per inclusion proof",
            proofs.cpu_per_request_us,
            "µs",
            baseline=healthz.cpu_per_request_us,
        ),
    ]


STAGE = Stage(NAME, "Audit log", run)
