"""The audit service as its tests drive it, and logs made by hand for the verifier and the
witness to refuse.

`flowing_history` gives intake and the applications' relay a database and a topic prefix of
their own (the verifier checks every history row of its database against the log, so no other
package's rows may be there), with the demo registry and a few keys; `running_audit` adds the
audit service, listening on a port of its own for the `sanwu audit` commands to read it. The
fault tests run the service as processes of their own instead.

`HandMadeLog` is a log in memory served over HTTP like the service's API: honest, or rewritten
and signed again with the same key, as a log whose operator holds the key could do."""

import asyncio
import base64
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException, Query

from services.applications.config import ApplicationsSettings
from services.applications.history import record_step
from services.applications.main import relay as applications_relay
from services.applications.workflow import Action, UnitState
from services.audit import merkle
from services.audit.checkpoints import Signer
from services.audit.config import AuditSettings
from services.audit.leaves import Leaf, event_leaf
from services.audit.main import create_app
from services.intake.config import IntakeSettings
from services.intake.main import create_app as create_intake_app
from services.migrations import migrate_all
from shared import kafka
from shared.access import service as access_service
from shared.access.models import Role
from shared.access.service import Principal
from shared.campaign import system_now
from shared.config import Settings
from shared.db import Database
from shared.registry.loader import load_file
from tests.support.app import bearer, serve
from tests.support.dynamic import put_application
from tests.support.processes import KEEP_ALIVE_SECONDS, free_port
from tests.support.stack import (
    KAFKA_BOOTSTRAP,
    IsolatedStack,
    create_database,
    drop_database,
    new_stack,
)
from tests.support.waiting import poll

ROOT = Path(__file__).resolve().parents[2]
DEMO_UNITS = ROOT / "data" / "demo-units.csv"
COUNTY = "340722000000"
VILLAGE = "340722100201"
SIBLING_VILLAGE = "340722101201"
BIN = Path(sys.executable).parent


@asynccontextmanager
async def listening(app: FastAPI) -> AsyncIterator[str]:
    """The app served on a port of its own in this process; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        await poll(lambda: server.started or task.done(), timeout=60, message="the app to listen")
        if task.done():
            task.result()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class History:
    """A database and topic prefix of their own with what the log reads flowing into them:
    intake (its relay on) and the applications' relay run, and the demo registry and a few
    keys are loaded."""

    stack: IsolatedStack
    settings: AuditSettings  # the audit service's, on this database and these topics
    db: Database  # as the migrator
    keys: dict[str, str]
    intake: httpx.AsyncClient

    @property
    def env(self) -> dict[str, str]:
        """What a `sanwu` command run against this world needs."""
        return {**self.stack.env(), "SANWU_LOG_LEVEL": "WARNING"}

    async def post_event(self, event: dict[str, Any]) -> str:
        """An event (tests/support/events.py builds them) accepted by intake: journaled and, by
        its relay, published."""
        response = await self.intake.post(
            "/v1/events", json=event, headers=bearer(self.keys["county_desk"])
        )
        assert response.status_code in (200, 201, 202), response.text
        return str(event["event_id"])

    async def post_events(self, events: list[dict[str, Any]]) -> list[str]:
        """A batch of events; returns the ids intake accepted."""
        response = await self.intake.post(
            "/v1/events/batch", json={"events": events}, headers=bearer(self.keys["county_desk"])
        )
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        return [r["event_id"] for r in results if r["status"] == "accepted"]

    async def add_step(self, *, reason: str) -> int:
        """An application of the county with its 'created' step, and a 'returned' step with a
        reason, as the applications service records and publishes them; returns the last
        step's id."""
        period = f"audit-{uuid.uuid4().hex[:8]}"
        application_id = await put_application(
            self.db, period=period, units={VILLAGE: UnitState.submitted}, county=COUNTY
        )
        principal = Principal(key_id="a1b2c3d4e5f6", role=Role.bureau, scope_code=COUNTY)
        async with self.db.session() as session:
            step = await record_step(
                session,
                application_id=application_id,
                action=Action.returned,
                at=system_now(),
                unit_code=VILLAGE,
                principal=principal,
                reason=reason,
                detail={"note_count": 2},
            )
        return step.step_id


@dataclass
class AuditWorld(History):
    """The history flowing, and the audit service serving it in this process."""

    url: str  # the audit service's
    audit: httpx.AsyncClient
    app: FastAPI

    async def index_of(self, kind: str, record_id: str | int, *, timeout: float = 30) -> int:
        """The leaf's position once the log holds it."""

        async def found() -> int | None:
            response = await self.audit.get(f"/v1/log/leaf/{kind}/{record_id}")
            return response.json()["index"] + 1 if response.status_code == 200 else None

        position: int | None = await poll(
            found, timeout=timeout, message=f"{kind} {record_id} in the log"
        )
        assert position is not None
        return position - 1

    async def checkpoint(self, *, covering: int, timeout: float = 30) -> dict[str, Any]:
        """The latest checkpoint once it covers `covering` leaves."""

        async def latest() -> dict[str, Any] | None:
            response = await self.audit.get("/v1/log/checkpoint")
            if response.status_code != 200:
                return None
            found: dict[str, Any] = response.json()
            return found if found["size"] >= covering else None

        checkpoint: dict[str, Any] | None = await poll(
            latest, timeout=timeout, message=f"a checkpoint of {covering} leaves"
        )
        assert checkpoint is not None
        return checkpoint


@asynccontextmanager
async def flowing_history() -> AsyncIterator[History]:
    stack = new_stack()
    common: dict[str, Any] = {
        "environment": "test",
        "database_url": stack.database_url,
        "topic_prefix": stack.topic_prefix,
        "kafka_bootstrap_servers": KAFKA_BOOTSTRAP,  # the stack under test, not the shell's
        "registry_refresh_seconds": 0.3,
    }
    settings = Settings(**common)
    await create_database(stack.database)
    try:
        await migrate_all(settings)
        db = Database.from_settings(settings, pool_size=2)
        async with db.engine.begin() as connection:
            await load_file(connection, DEMO_UNITS)
            keys = {
                name: await access_service.create(
                    connection, role=role, scope_code=scope, actor="user:auditor"
                )
                for name, role, scope in [
                    ("county_desk", Role.desk, COUNTY),
                    ("county_reader", Role.reader, COUNTY),
                    ("admin", Role.admin, None),
                ]
            }
        await kafka.ensure_topics(settings)
        audit_settings = AuditSettings(
            **common,
            audit_key_operations_poll_seconds=0.2,
            audit_checkpoint_interval_seconds=0.2,
        )
        async with AsyncExitStack() as running:
            running.push_async_callback(db.dispose)
            intake = await running.enter_async_context(
                serve(create_intake_app(IntakeSettings(**common, relay_idle_poll_seconds=0.2)))
            )
            steps_relay = applications_relay(
                db, ApplicationsSettings(**common, applications_relay_idle_poll_seconds=0.2)
            )
            relay_task = asyncio.create_task(steps_relay.run())
            running.push_async_callback(_cancelled, relay_task)
            yield History(stack, audit_settings, db, keys, intake)
    finally:
        await drop_database(stack.database)
        with contextlib.suppress(Exception):
            await kafka.delete_topics(settings, [t.name for t in kafka.topic_specs(settings)])


@asynccontextmanager
async def running_audit() -> AsyncIterator[AuditWorld]:
    async with flowing_history() as history, AsyncExitStack() as running:
        app = create_app(history.settings)
        url = await running.enter_async_context(listening(app))
        audit = await running.enter_async_context(
            httpx.AsyncClient(
                base_url=url, headers=bearer(history.keys["county_reader"]), timeout=30
            )
        )
        yield AuditWorld(
            history.stack,
            history.settings,
            history.db,
            history.keys,
            history.intake,
            url,
            audit,
            app,
        )


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


async def sanwu(*args: str, env: dict[str, str]) -> Ran:
    """A `sanwu` command in a process of its own, without blocking this loop (which may be
    serving what the command reads)."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / "sanwu"),
        *args,
        env=os.environ | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


# --- logs made by hand ----------------------------------------------------------------------


def made_leaves(count: int, *, start: int = 0) -> list[Leaf]:
    return [
        event_leaf(
            event_id=uuid.UUID(int=i + 1),
            payload={"type": "petition_visit", "unit_code": VILLAGE, "headcount": i},
            accepted_at=datetime(2026, 12, 1, tzinfo=UTC),
            key_id="a1b2c3d4e5f6",
        )
        for i in range(start, start + count)
    ]


@dataclass
class HandMadeLog:
    """A log in memory, served like the audit API; `leaves` may be changed between reads."""

    signer: Signer
    leaves: list[Leaf] = field(default_factory=list)
    forged_signature: bool = False

    def tree(self) -> merkle.Tree:
        return merkle.Tree.of(leaf.body for leaf in self.leaves)

    def checkpoint(self) -> dict[str, Any]:
        tree = self.tree()
        signed = self.signer.sign(
            size=tree.size, root_hash=tree.root(), time=datetime.now(UTC)
        ).as_json()
        if self.forged_signature:
            raw = bytearray(base64.b64decode(signed["signature"]))
            raw[0] ^= 1
            signed["signature"] = base64.b64encode(bytes(raw)).decode()
        return signed

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/log/public-key")
        async def public_key() -> dict[str, str]:
            return self.signer.public_key.as_json()

        @app.get("/v1/log/checkpoint")
        async def checkpoint() -> dict[str, Any]:
            return self.checkpoint()

        @app.get("/v1/log/entries")
        async def entries(start: int, end: int) -> dict[str, Any]:
            chosen = self.leaves[start:end]
            return {
                "entries": [
                    {"index": start + i, "leaf": leaf.text} for i, leaf in enumerate(chosen)
                ]
            }

        @app.get("/v1/log/proof/consistency")
        async def consistency(to: int, old: int = Query(alias="from")) -> dict[str, Any]:
            tree = self.tree()
            if not 0 < old <= to <= tree.size:
                raise HTTPException(422, "no such sizes")
            hashes = [base64.b64encode(h).decode() for h in tree.consistency(old, to)]
            return {"from": old, "to": to, "hashes": hashes}

        @app.get("/v1/log/leaf/{kind}/{record_id}")
        async def leaf_index(kind: str, record_id: str) -> dict[str, int]:
            for index, leaf in enumerate(self.leaves):
                if (leaf.kind, leaf.record_id) == (kind, record_id):
                    return {"index": index}
            raise HTTPException(404, "no such leaf")

        @app.get("/v1/log/proof/inclusion")
        async def inclusion(index: int, size: int) -> dict[str, Any]:
            hashes = [base64.b64encode(h).decode() for h in self.tree().inclusion(index, size)]
            return {"index": index, "size": size, "hashes": hashes}

        return app
