"""Services run as in production: a uvicorn process (no reload, no debug, no access log, log
level warning) with the run's settings in its environment, used once it answers its readiness
probe and stopped gracefully afterwards."""

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.report import ROOT

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Service:
    name: str
    url: str
    pid: int
    log: Path

    def cpu_seconds(self) -> float:
        """User plus system CPU the process has used so far (Linux /proc)."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mib(service: Service) -> tuple[float, float]:
    """(resident now, peak resident) of a service process, in MiB (Linux /proc)."""
    figures: dict[str, float] = {}
    with open(f"/proc/{service.pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                figures[name] = int(value.split()[0]) / 1024
    return figures["VmRSS"], figures["VmHWM"]


async def metric_value(
    service: Service, name: str, *, labels: dict[str, str] | None = None
) -> float | None:
    """One sample of a service's Prometheus /metrics (None when it has no such sample)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{service.url}/metrics") as response,
    ):
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and (labels is None or labels.items() <= sample.labels.items()):
                return float(sample.value)
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def log_file(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{name}.log"


def uvicorn_command(app: str, port: int) -> list[str]:
    """`app` is a factory: "package.module:create_app"."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@asynccontextmanager
async def running_service(
    name: str,
    app: str,
    *,
    env: dict[str, str],
    log_dir: Path,
    ready_path: str = "/readyz",
    start_timeout: float = 60.0,
) -> AsyncIterator[Service]:
    port = free_port()
    log_path = log_file(log_dir, name)
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *uvicorn_command(app, port),
            cwd=ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            # A session of its own, as a service has in production: with the kernel's
            # autogroup, a service in the bench's session shared one scheduling group with the
            # load generator, whose CPU came out of the service's share.
            start_new_session=True,
        )
    service = Service(name, f"http://127.0.0.1:{port}", process.pid, log_path)
    try:
        await wait_ready(service, process, ready_path=ready_path, timeout=start_timeout)
        yield service
    finally:
        await stop(process)


async def wait_ready(
    service: Service, process: asyncio.subprocess.Process, *, ready_path: str, timeout: float
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while loop.time() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"{service.name} exited at start:\n{_tail(service.log)}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(service.url + ready_path) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{service.name} was not ready in {timeout:.0f} s:\n{_tail(service.log)}")


async def stop(process: asyncio.subprocess.Process, *, grace: float = 15.0) -> None:
    """SIGTERM, as an orchestrator stops a service: uvicorn drains and shuts down."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            process.kill()
            await process.wait()


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
