"""Services as real processes, started, killed with SIGKILL and restarted by fault tests."""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


@dataclass
class Process:
    argv: list[str]
    health_url: str | None = None
    popen: subprocess.Popen[bytes] | None = None


@dataclass
class Supervisor:
    env: dict[str, str]
    log_dir: Path
    processes: dict[str, Process] = field(default_factory=dict)

    def add(self, name: str, argv: list[str], *, health_url: str | None = None) -> None:
        self.processes[name] = Process(argv, health_url)

    def start(self, name: str) -> None:
        process = self.processes[name]
        log = (self.log_dir / f"{name}.log").open("ab")
        process.popen = subprocess.Popen(
            process.argv, env=os.environ | self.env, stdout=log, stderr=subprocess.STDOUT
        )
        if process.health_url:
            wait_healthy(process.health_url, process.popen)

    def start_all(self) -> None:
        for name in self.processes:
            self.start(name)

    def ensure_running(self) -> list[str]:
        """Start whatever exited on its own (as an orchestrator would); returns their names."""
        restarted = [
            name
            for name, process in self.processes.items()
            if process.popen is None or process.popen.poll() is not None
        ]
        for name in restarted:
            self.start(name)
        return restarted

    def kill(self, name: str) -> None:
        popen = self.processes[name].popen
        if popen is not None and popen.poll() is None:
            popen.send_signal(signal.SIGKILL)
            popen.wait(timeout=30)

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.popen is not None and process.popen.poll() is None:
                process.popen.terminate()
        for process in self.processes.values():
            if process.popen is not None:
                try:
                    process.popen.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.popen.kill()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, popen: subprocess.Popen[bytes], *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {popen.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer")


# The suite's httpx clients keep an idle connection for 5 s, as long as uvicorn keeps it by
# default: a request sent as the server closes it gets no answer. The suite's services keep
# theirs longer, as a server behind clients with pools should (docs/api.md, Connections).
KEEP_ALIVE_SECONDS = 30


def uvicorn(app_factory: str, port: int) -> list[str]:
    return [
        str(BIN / "uvicorn"),
        app_factory,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        str(KEEP_ALIVE_SECONDS),
    ]


def sanwu(*args: str) -> list[str]:
    return [str(BIN / "sanwu"), *args]
