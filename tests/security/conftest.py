import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest

from shared.config import Settings
from tests.support.console import ConsoleStack
from tests.support.one_province import running_province
from tests.support.processes import free_port, uvicorn, wait_healthy
from tests.support.stack import IsolatedStack


def start_service(
    app_factory: str, *, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A service as in production: its own uvicorn process on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        uvicorn(app_factory, port), env=os.environ | {"SANWU_LOG_JSON": "true"} | (env or {})
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{base_url}/healthz", process)
    except BaseException:
        process.kill()
        raise
    return process, base_url


@contextlib.contextmanager
def live(app_factory: str, *, env: dict[str, str]) -> Iterator[str]:
    """The base URL of a service in its own process, stopped afterwards."""
    process, base_url = start_service(app_factory, env=env)
    try:
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def live_intake(settings: Settings) -> Iterator[str]:
    with live("services.intake.main:create_app", env={"SANWU_INTAKE_RUN_RELAY": "false"}) as url:
        yield url


@pytest.fixture(scope="module")
def live_reporting(settings: Settings) -> Iterator[str]:
    # Without its consumer: the fuzzing is about the API, and a second member of reporting's
    # consumer group would take partitions from the in-process service other tests use.
    env = {"SANWU_REPORTING_RUN_CONSUMER": "false"}
    with live("services.reporting.main:create_app", env=env) as url:
        yield url


@pytest.fixture(scope="module")
def live_evaluation(settings: Settings) -> Iterator[str]:
    # Its API is health, readiness and metrics; its consumer stays off for the same reason.
    env = {"SANWU_EVALUATION_RUN_CONSUMER": "false"}
    with live("services.evaluation.main:create_app", env=env) as url:
        yield url


@pytest.fixture(scope="package")
async def province(
    stack: IsolatedStack, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ConsoleStack]:
    """The four services and the console on one province of their own (tests/support/
    one_province.py), for the permission matrix, the CSRF tests and the fuzzing of
    applications and the console."""
    async with running_province(tmp_path_factory.mktemp("province")) as running:
        yield running


@pytest.fixture(scope="module")
def live_applications(province: ConsoleStack) -> str:
    return province.urls["applications"]


@pytest.fixture(scope="module")
def live_console(province: ConsoleStack) -> str:
    return province.urls["console"]
