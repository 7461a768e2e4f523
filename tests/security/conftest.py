import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.config import Settings

UVICORN = str(Path(sys.executable).parent / "uvicorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(
    app_factory: str, *, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A service as in production: its own uvicorn process on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [
            UVICORN,
            app_factory,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=os.environ | {"SANWU_LOG_JSON": "true"} | (env or {}),
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{app_factory} exited with {process.returncode}")
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{app_factory} did not start")


@pytest.fixture(scope="session")
def live_intake(settings: Settings) -> Iterator[str]:
    process, base_url = start_service(
        "services.intake.main:create_app", env={"SANWU_INTAKE_RUN_RELAY": "false"}
    )
    yield base_url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def live_reporting(settings: Settings) -> Iterator[str]:
    # Without its consumer: the fuzzing is about the API, and a second member of reporting's
    # consumer group would take partitions from the in-process service other tests use.
    process, base_url = start_service(
        "services.reporting.main:create_app", env={"SANWU_REPORTING_RUN_CONSUMER": "false"}
    )
    yield base_url
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def live_evaluation(settings: Settings) -> Iterator[str]:
    # Its API is health, readiness and metrics; its consumer stays off for the same reason.
    process, base_url = start_service(
        "services.evaluation.main:create_app", env={"SANWU_EVALUATION_RUN_CONSUMER": "false"}
    )
    yield base_url
    process.terminate()
    process.wait(timeout=30)
