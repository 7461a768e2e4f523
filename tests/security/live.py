"""A service as in production (its own uvicorn process), with settings of the test's own and
its log kept for reading."""

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.metrics import value_of
from tests.support.processes import free_port, uvicorn, wait_healthy

INTAKE = "services.intake.main:create_app"


@dataclass
class LiveService:
    process: subprocess.Popen[bytes]
    base_url: str
    port: int
    log_path: Path

    def logs(self) -> list[dict[str, Any]]:
        """The service's JSON log lines so far."""
        entries = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def metric(self, name: str, labels: dict[str, str]) -> float:
        """A sample of the service's /metrics; 0 if it has not been counted yet."""
        return value_of(httpx.get(f"{self.base_url}/metrics").text, name, **labels)


@contextmanager
def live_service(app_factory: str, *, env: dict[str, str], log_path: Path) -> Iterator[LiveService]:
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            uvicorn(app_factory, port),
            env=os.environ | {"SANWU_LOG_JSON": "true"} | env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{base_url}/healthz", process)
        yield LiveService(process, base_url, port, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
