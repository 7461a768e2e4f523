"""Load generators. Closed loop: N workers, each sending its next request as soon as the
previous one is answered, for a fixed time. Open loop: requests started at a steady rate.
Both record every latency, count what the server accepted, and measure the CPU the load
generator itself, the server and the whole machine used meanwhile, so a figure can be read
against what the client cost."""

import asyncio
import math
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from bench.report import percentile
from bench.services import Service

# One request of worker `worker`: returns how many items the server accepted, or raises
# Refused when the answer is not the expected success.
Send = Callable[[int], Awaitable[int]]


class Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


@dataclass
class CpuUse:
    """Cores busy on average over a window (2.0 is the whole of a 2-core machine)."""

    client: float
    server: float | None
    machine: float

    def describe(self) -> str:
        server = "" if self.server is None else f", server {self.server:.2f}"
        return f"CPU cores: load generator {self.client:.2f}{server}, machine {self.machine:.2f}"


@dataclass
class LoadResult:
    requests: int
    accepted_items: int
    elapsed: float
    latencies_ms: list[float]
    refusals: Counter[int] = field(default_factory=Counter)
    cpu: CpuUse | None = None

    @property
    def items_per_second(self) -> float:
        return self.accepted_items / self.elapsed

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.elapsed

    @property
    def server_cpu_per_item_us(self) -> float:
        """Microseconds of server CPU per accepted item: the cost, less sensitive than the rate
        to what else the machine is doing."""
        if self.cpu is None or self.cpu.server is None or not self.accepted_items:
            return math.nan
        return self.cpu.server * self.elapsed / self.accepted_items * 1e6

    def latency(self, p: float) -> float:
        return percentile(sorted(self.latencies_ms), p)

    def describe(self, unit: str = "events/s") -> str:
        refused = f", refused {dict(self.refusals)}" if self.refusals else ""
        cpu = f"; {self.cpu.describe()}" if self.cpu else ""
        return (
            f"{self.items_per_second:,.0f} {unit} ({self.requests:,} requests in "
            f"{self.elapsed:.1f} s), p50 {self.latency(50):.1f} ms, p99 {self.latency(99):.1f} ms"
            f"{refused}{cpu}"
        )


def combined(parts: list[LoadResult]) -> LoadResult:
    """Several loads of the same kind as one: counts and latencies pooled, CPU averaged over
    their time."""
    elapsed = sum(part.elapsed for part in parts)
    refusals: Counter[int] = Counter()
    for part in parts:
        refusals.update(part.refusals)
    result = LoadResult(
        requests=sum(part.requests for part in parts),
        accepted_items=sum(part.accepted_items for part in parts),
        elapsed=elapsed,
        latencies_ms=[latency for part in parts for latency in part.latencies_ms],
        refusals=refusals,
    )
    cpus = [(part.cpu, part.elapsed) for part in parts if part.cpu is not None]
    if cpus and elapsed > 0:
        servers = [(cpu.server, seconds) for cpu, seconds in cpus if cpu.server is not None]
        result.cpu = CpuUse(
            client=_time_weighted([(cpu.client, seconds) for cpu, seconds in cpus]),
            server=_time_weighted(servers) if len(servers) == len(cpus) else None,
            machine=_time_weighted([(cpu.machine, seconds) for cpu, seconds in cpus]),
        )
    return result


def _time_weighted(figures: list[tuple[float, float]]) -> float:
    """The mean of (figure, seconds) pairs, weighted by their seconds."""
    return sum(figure * seconds for figure, seconds in figures) / sum(s for _, s in figures)


async def interleaved(
    loads: dict[str, Callable[[float], Awaitable[LoadResult]]], *, seconds: float, rounds: int
) -> dict[str, LoadResult]:
    """Run each load for `seconds` in all, taking turns in `rounds` slices (A B A B ...), so
    that what else the machine is doing weighs on every side alike; the slices are combined."""
    parts: dict[str, list[LoadResult]] = {name: [] for name in loads}
    for _ in range(rounds):
        for name, load in loads.items():
            parts[name].append(await load(seconds / rounds))
    return {name: combined(results) for name, results in parts.items()}


def client_session(concurrency: int) -> aiohttp.ClientSession:
    """A pooled session: one kept-alive connection per worker, no cookie handling."""
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False, ttl_dns_cache=None)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=60),
        skip_auto_headers=("User-Agent",),
    )


async def closed_loop(
    send: Send,
    *,
    concurrency: int,
    seconds: float,
    warmup_seconds: float = 0.0,
    server: Service | None = None,
) -> LoadResult:
    """Warm up (not counted), then load for `seconds` and report what was measured."""
    if warmup_seconds > 0:
        await _run_workers(send, concurrency=concurrency, seconds=warmup_seconds)
    meter = CpuMeter(server)
    result = await _run_workers(send, concurrency=concurrency, seconds=seconds)
    result.cpu = meter.read()
    return result


async def _run_workers(send: Send, *, concurrency: int, seconds: float) -> LoadResult:
    latencies: list[float] = []
    refusals: Counter[int] = Counter()
    accepted = 0
    clock = time.perf_counter
    start = clock()
    deadline = start + seconds

    async def worker(index: int) -> None:
        nonlocal accepted
        while (began := clock()) < deadline:
            try:
                items = await send(index)
                accepted += items  # not `accepted += await ...`: that would lose updates
            except Refused as refusal:
                refusals[refusal.status] += 1
            latencies.append((clock() - began) * 1000)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = clock() - start
    return LoadResult(len(latencies), accepted, elapsed, latencies, refusals)


async def open_loop(
    send: Send, *, rate: float, seconds: float, server: Service | None = None
) -> LoadResult:
    """Start a request every 1/rate seconds whether or not earlier ones were answered (a steady
    arrival rate, as desks post), for `seconds`; latency counts from the scheduled start."""
    latencies: list[float] = []
    refusals: Counter[int] = Counter()
    accepted = 0
    clock = time.perf_counter
    meter = CpuMeter(server)
    start = clock()

    async def one(index: int, scheduled: float) -> None:
        nonlocal accepted
        try:
            items = await send(index)
            accepted += items
        except Refused as refusal:
            refusals[refusal.status] += 1
        latencies.append((clock() - scheduled) * 1000)

    requests: list[asyncio.Task[None]] = []
    for index in range(int(rate * seconds)):
        scheduled = start + index / rate
        await asyncio.sleep(max(0.0, scheduled - clock()))
        requests.append(asyncio.create_task(one(index, scheduled)))
    await asyncio.gather(*requests)
    result = LoadResult(len(latencies), accepted, clock() - start, latencies, refusals)
    result.cpu = meter.read()
    return result


class CpuMeter:
    """CPU used from construction to `read()`: by this process, a service, the machine."""

    def __init__(self, server: Service | None = None) -> None:
        self.server = server
        self._wall = time.perf_counter()
        self._client = time.process_time()
        self._server = server.cpu_seconds() if server else 0.0
        self._busy, self._total = _machine_ticks()

    def read(self) -> CpuUse:
        wall = time.perf_counter() - self._wall
        busy, total = _machine_ticks()
        cores = os.cpu_count() or 1
        return CpuUse(
            client=(time.process_time() - self._client) / wall,
            server=(self.server.cpu_seconds() - self._server) / wall if self.server else None,
            machine=cores * (busy - self._busy) / max(1, total - self._total),
        )


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]  # guest time is in user
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)
