"""The NOTIFY listener that keeps key caches honest: a killed connection stops cached keys from
being trusted at once, the listener comes back whatever stopped it, and a revocation reaches a
service whose listening connection was killed. Connections are killed from PostgreSQL
(pg_terminate_backend), never by stopping it."""

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from shared.access import service as access_service
from shared.access.cache import CHANNEL as KEY_CHANNEL
from shared.access.cache import KeyCache
from shared.access.models import Role
from shared.config import Settings
from shared.db import Database
from shared.notifications import ChangeListener
from tests.conftest import TOWNSHIP, VILLAGE, bearer
from tests.security.live import INTAKE, live_service
from tests.support import events
from tests.support.waiting import wait_until


async def terminate(db: Database, backend_pid: int) -> None:
    """Kill a backend from PostgreSQL and wait until it is gone."""
    async with db.connection() as connection:
        assert await connection.fetchval("SELECT pg_terminate_backend($1)", backend_pid)
        for _ in range(500):
            if not await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", backend_pid
            ):
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"backend {backend_pid} did not end")


async def listener_of(db: Database, service_pid: int, *, other_than: int | None = None) -> int:
    """The backend of a service process's listening connection, once it is there."""
    deadline = time.monotonic() + 20
    async with db.connection() as connection:
        while time.monotonic() < deadline:
            pid = await connection.fetchval(
                """
                SELECT pid FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = $1
                   AND pid IS DISTINCT FROM $2
                """,
                f"sanwu listener {service_pid}",
                other_than,
            )
            if pid is not None:
                return int(pid)
            await asyncio.sleep(0.05)
    raise AssertionError(f"no listening connection from process {service_pid}")


async def new_key(db: Database) -> str:
    async with db.engine.begin() as connection:
        return await access_service.create(connection, role=Role.desk, scope_code=TOWNSHIP)


async def revoke(db: Database, key: str) -> None:
    async with db.engine.begin() as connection:
        assert await access_service.revoke(connection, key.split("_")[1])


async def test_a_revocation_reaches_a_service_whose_listener_was_killed(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    env = {"SANWU_INTAKE_RUN_RELAY": "false"}
    first, second = await new_key(db), await new_key(db)
    with live_service(INTAKE, env=env, log_path=tmp_path / "intake.log") as service:
        async with httpx.AsyncClient(base_url=service.base_url) as client:

            async def post(key: str) -> httpx.Response:
                return await client.post(
                    "/v1/events", json=events.visit(VILLAGE), headers=bearer(key)
                )

            listening = await listener_of(db, service.process.pid)
            assert (await post(first)).status_code == 202  # now kept in the service's memory
            await terminate(db, listening)
            await revoke(db, first)  # no listener hears this NOTIFY
            refused = await post(first)

            # The listener comes back on its own, and revocations reach the service again.
            await listener_of(db, service.process.pid, other_than=listening)
            assert (await post(second)).status_code == 202
            await revoke(db, second)
            refused_later = await refused_within(post, second, seconds=2.0)

    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    assert "revoked" in refused_later.json()["detail"]


async def refused_within(post: Callable[[str], Any], key: str, *, seconds: float) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response: httpx.Response = await post(key)
        if response.status_code == 401:
            return response
        await asyncio.sleep(0.01)
    raise AssertionError(f"the revoked key was still accepted after {seconds} s")


async def test_cached_keys_are_distrusted_the_moment_the_connection_closes(
    settings: Settings, db: Database
) -> None:
    keys = KeyCache(db)
    listener = ChangeListener(settings, {KEY_CHANNEL: keys})
    task = asyncio.create_task(listener.run())
    try:
        await wait_until(
            lambda: keys.listening and listener.backend_pid is not None,
            timeout=10,
            message="the listener to connect",
            interval=0.005,
        )
        killed = listener.backend_pid
        assert killed is not None
        await terminate(db, killed)
        noticed = await wait_until(
            lambda: not keys.listening, timeout=5, message="the cache to notice", interval=0.005
        )
        back = await wait_until(
            lambda: keys.listening, timeout=10, message="the listener to return", interval=0.005
        )
        assert listener.backend_pid not in (None, killed)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert noticed < 0.5  # not at the next ping
    assert back < 5


class FlakyCache:
    """A cache whose new generation fails when told to."""

    def __init__(self) -> None:
        self.listening = False
        self.failures_left = 0

    def new_generation(self, *_: Any) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("a cache failed")


async def test_the_listener_starts_again_after_an_unexpected_error(
    settings: Settings, db: Database
) -> None:
    keys, flaky = KeyCache(db), FlakyCache()
    flaky.failures_left = 2  # fails while connecting, twice
    listener = ChangeListener(settings, {KEY_CHANNEL: keys, "sanwu_test_flaky": flaky})
    task = asyncio.create_task(listener.run())
    try:
        await wait_until(lambda: keys.listening, timeout=10, message="the key listener")
        first = listener.backend_pid
        flaky.failures_left = 1  # and now on a notification
        async with db.connection() as connection:
            await connection.execute("SELECT pg_notify('sanwu_test_flaky', '')")
        await wait_until(
            lambda: listener.backend_pid not in (None, first) and keys.listening,
            timeout=10,
            message="a new listening connection",
        )
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
