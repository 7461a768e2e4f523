"""Key operations reach the log through an outbox: a trigger on `access.key_audit` copies each
row added into `access.key_operations_outbox` and notifies; the drain claims waiting rows,
appends their leaves and removes them in one transaction, so each is appended once. The
notification wakes the drain at once (through the change listener, on its channel); without
one it looks every `SANWU_AUDIT_KEY_OPERATIONS_POLL_SECONDS`."""

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter

from services.audit.leaves import key_operation_leaf
from services.audit.repository import KeyOperationsRepository, LogRepository
from services.audit.service import Appended, Clock, append
from shared.db import Database
from shared.retry import keep_running

CHANNEL = "audit_key_operations"  # shared/migrations/versions/2026_12_06_0008_...
BATCH = 1000
drained_total = Counter("sanwu_audit_key_operations_total", "Key operations appended to the log")


class KeyOperationsDrain:
    # What the change listener sets and calls (shared.notifications.Invalidated): a
    # notification is a wake-up here, not a cache to forget.
    listening = False

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        poll_seconds: float,
        on_append: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.on_append = on_append
        self._woken = asyncio.Event()

    def new_generation(self, *_: Any) -> None:
        self._woken.set()

    async def drain_once(self) -> Appended:
        """One batch of waiting operations appended (none waiting: nothing)."""
        async with self.db.session() as session:
            outbox = await KeyOperationsRepository.from_session(session)
            operations = await outbox.claim(BATCH)
            log = LogRepository(outbox.connection, session=session)
            leaves = [key_operation_leaf(operation) for operation in operations]
            appended = await append(log, leaves, at=self.clock()) if leaves else None
        if appended is None:
            return Appended(0, 0, 0)
        drained_total.inc(appended.appended)
        if appended.appended:
            self.on_append()
        return appended

    async def run(self) -> None:
        await keep_running(self._drain, event="key_operations_drain_failed")

    async def _drain(self) -> None:
        while True:
            self._woken.clear()
            done = await self.drain_once()
            if done.appended + done.ignored < BATCH:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await self._woken.wait()
