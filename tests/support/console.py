"""The console and the six services behind it as real uvicorn processes, on free ports, on a
database and topic prefix of their own (the demo registry, the keys the tests name, the
applications window open all year, the audit log checkpointed every 0.2 s), for a real browser
to talk to."""

import asyncio
import base64
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.console.config import ConsoleSettings
from shared import kafka
from shared.access import service as access_service
from shared.access.models import Role
from shared.config import Settings
from shared.db import Database
from tests.conftest import COUNTY
from tests.support.pipeline import KeySpecs, prepare
from tests.support.processes import Supervisor, free_port, uvicorn, wait_healthy
from tests.support.stack import (
    KAFKA_BOOTSTRAP,
    create_database,
    drop_database,
    new_stack,
    without_user,
)

SERVICES = {
    "intake": "services.intake.main:create_app",
    "evaluation": "services.evaluation.main:create_app",
    "reporting": "services.reporting.main:create_app",
    "applications": "services.applications.main:create_app",
    "audit": "services.audit.main:create_app",
    "cases": "services.cases.main:create_app",
    "console": "services.console.main:create_app",
}


@dataclass
class ConsoleStack:
    settings: Settings
    env: dict[str, str]
    urls: dict[str, str]  # by service name, console included
    keys: dict[str, str]
    supervisor: Supervisor

    @property
    def console_url(self) -> str:
        return self.urls["console"]

    def console_settings(self, **overrides: object) -> ConsoleSettings:
        """Settings for a console run in-process against the same services."""
        return ConsoleSettings(
            **{
                "environment": "test",
                "database_url": without_user(self.settings.database_url),
                "topic_prefix": self.settings.topic_prefix,
                "intake_url": self.urls["intake"],
                "evaluation_url": self.urls["evaluation"],
                "reporting_url": self.urls["reporting"],
                "applications_url": self.urls["applications"],
                "audit_url": self.urls["audit"],
                "cases_url": self.urls["cases"],
                "registry_refresh_seconds": 0.3,
                **overrides,
            }
        )


@contextlib.asynccontextmanager
async def running_console(
    *, registry: list[Path], keys: KeySpecs, log_dir: Path, overrides: dict[str, str] | None = None
) -> AsyncIterator[ConsoleStack]:
    """`overrides`: the services' settings where a test needs its own."""
    stack = new_stack()
    settings = Settings(
        environment="test", database_url=stack.database_url, topic_prefix=stack.topic_prefix
    )
    await create_database(stack.database)
    supervisor: Supervisor | None = None
    try:
        created = await prepare(settings, registry=registry, keys=keys)
        ports = {name: free_port() for name in SERVICES}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        env = stack.env() | {
            "SANWU_KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
            "SANWU_REGISTRY_REFRESH_SECONDS": "0.3",
            "SANWU_EVALUATION_POLL_MS": "50",
            "SANWU_STATUS_RELAY_IDLE_POLL_SECONDS": "0.2",
            "SANWU_APPLICATIONS_RELAY_IDLE_POLL_SECONDS": "0.2",
            "SANWU_APPLICATION_WINDOW": "01-01/12-31",
            "SANWU_AUDIT_CHECKPOINT_INTERVAL_SECONDS": "0.2",
            "SANWU_AUDIT_KEY_OPERATIONS_POLL_SECONDS": "0.2",
            "SANWU_CASES_RELAY_IDLE_POLL_SECONDS": "0.2",
            "SANWU_LOG_JSON": "false",
            **{f"SANWU_{name.upper()}_URL": url for name, url in urls.items() if name != "console"},
        }
        env |= overrides or {}
        supervisor = Supervisor(env=env, log_dir=log_dir)
        for name, factory in SERVICES.items():
            supervisor.add(name, uvicorn(factory, ports[name]))
        supervisor.start_all()  # together: each then waited for in turn
        for name, process in supervisor.processes.items():
            assert process.popen is not None
            wait_healthy(f"{urls[name]}/healthz", process.popen, timeout=120)
        yield ConsoleStack(
            settings=settings, env=env, urls=urls, keys=created, supervisor=supervisor
        )
    finally:
        if supervisor is not None:
            supervisor.stop_all()
        await drop_database(stack.database)
        with contextlib.suppress(Exception):
            names = [t.name for t in kafka.topic_specs(settings)]
            await kafka.delete_topics(settings, names)


# --- talking to a console in-process, as a browser's forms would -------------------------------

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """A console's clock in the test's hands."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await client.get("/signin")
    token = TOKEN.search(form.text)
    assert token is not None
    return await client.post("/signin", data={"csrf_token": token.group(1), "key": key})


async def csrf_of(client: httpx.AsyncClient, path: str = "/record") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    token = TOKEN.search(page.text)
    assert token is not None
    return token.group(1)


async def sessions_of(db: Database, key_id: str) -> list[dict]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text("SELECT * FROM console.sessions WHERE key_id = :k"), {"k": key_id}
        )
        return [dict(r._mapping) for r in rows]


async def new_key(db: Database, role: Role = Role.reader, scope: str = COUNTY) -> str:
    async with db.engine.begin() as connection:
        return await access_service.create(connection, role=role, scope_code=scope)


def key_id(key: str) -> str:
    return key.split("_")[1]


# --- an audit log answered by hand ---------------------------------------------------------------

HAND_ROOT = base64.b64encode(hashlib.sha256(b"a root answered by hand").digest()).decode()


class HandAnsweredLog:
    """An audit service answering the two routes the console reads as the test sets them: the
    states a real log passes through too fast to catch (a record not in the log yet, past the
    latest checkpoint, before the first checkpoint) and a log that does not answer in time."""

    def __init__(self) -> None:
        self.indexes: dict[str, int] = {}  # record id -> leaf index
        self.size: int | None = None  # of the latest checkpoint; None: none signed yet
        self.stalled = False
        self.released = asyncio.Event()  # lets stalled answers go at the end

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/log/leaf/{kind}/{record_id}")
        async def leaf(kind: str, record_id: str) -> JSONResponse:
            await self._stall()
            if record_id not in self.indexes:
                return _problem(404, "leaf-not-found", f"the log holds no {kind} {record_id}")
            body = {"kind": kind, "id": record_id, "index": self.indexes[record_id]}
            return JSONResponse(body)

        @app.get("/v1/log/checkpoint")
        async def checkpoint() -> JSONResponse:
            await self._stall()
            if self.size is None:
                return _problem(503, "no-checkpoint", "the log has signed no checkpoint yet")
            return JSONResponse(
                {
                    "origin": "sanwu.test/hand",
                    "size": self.size,
                    "root_hash": HAND_ROOT,
                    "time": "2026-12-03T02:04:05.000000Z",
                    "key_id": "0011223344556677",
                    "signature": "c2lnbmVk",
                }
            )

        return app

    async def _stall(self) -> None:
        if self.stalled:
            await asyncio.wait_for(self.released.wait(), timeout=30)


def _problem(status: int, slug: str, detail: str) -> JSONResponse:
    body = {"type": f"urn:sanwu:problem:{slug}", "title": slug, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")
