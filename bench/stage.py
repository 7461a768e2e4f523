"""What a stage is and what it is given.

A stage is an async function taking a `BenchContext` and returning its `Result` entries. It
starts the services it needs with `ctx.service(...)`, loads them with `bench.load.closed_loop`,
reports progress with `ctx.step(...)`, and may add latency samples or growth points for the plot.
"""

import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bench.environment import BenchEnvironment
from bench.report import GrowthSeries, LatencySeries, Result
from bench.services import Service, running_service

T = TypeVar("T")


@dataclass
class BenchContext:
    quick: bool
    env: BenchEnvironment
    results_dir: Path
    clients: int = 32  # concurrent clients of the load stages
    started: float = field(default_factory=time.monotonic)
    latencies: list[LatencySeries] = field(default_factory=list)
    growth: list[GrowthSeries] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stage_name: str = ""

    def pick(self, *, full: T, quick: T) -> T:
        return quick if self.quick else full

    def step(self, message: str) -> None:
        """A progress line on stderr."""
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.1f}s] {self.stage_name}: {message}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        """A sentence printed under the results table (how a figure was measured)."""
        self.notes.append(message)

    @asynccontextmanager
    async def service(self, name: str, app: str, **settings: str) -> AsyncIterator[Service]:
        """Run `app` (a uvicorn factory) against this run's database and topics; `settings`
        are extra environment variables (SANWU_INTAKE_RUN_RELAY="false")."""
        self.step(f"starting {name}")
        async with running_service(
            name,
            app,
            env=self.env.service_env(**settings),
            log_dir=self.results_dir / "logs",
        ) as service:
            yield service


@dataclass(frozen=True)
class Stage:
    name: str  # as given to --stage
    title: str
    run: Callable[[BenchContext], Awaitable[list[Result]]]
