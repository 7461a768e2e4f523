"""Checkpoints signed as the log grows: after an append, at most once per
`SANWU_AUDIT_CHECKPOINT_INTERVAL_SECONDS`, and at start when the log has none of its current
size (a new log's first checkpoint is of the empty tree)."""

import asyncio

import structlog
from prometheus_client import Gauge

from services.audit.service import AuditLog
from shared.retry import keep_running

log = structlog.get_logger(__name__)
checkpoint_size = Gauge("sanwu_audit_checkpoint_size", "The size of the latest checkpoint")


class Checkpointer:
    def __init__(self, audit_log: AuditLog, *, interval_seconds: float) -> None:
        self.audit_log = audit_log
        self.interval_seconds = interval_seconds
        self._grown = asyncio.Event()
        self._grown.set()  # the first round looks at the log as it is
        self.latest_size: int | None = None

    def wake(self) -> None:
        """The log has grown."""
        self._grown.set()

    async def run(self) -> None:
        await keep_running(self._sign_as_it_grows, event="checkpoint_failed")

    async def _sign_as_it_grows(self) -> None:
        while True:
            await self._grown.wait()
            self._grown.clear()
            signed = await self.audit_log.sign()
            if signed.size != self.latest_size:
                log.info("checkpoint_signed", size=signed.size, key_id=signed.key_id)
                checkpoint_size.set(signed.size)
                self.latest_size = signed.size
            await asyncio.sleep(self.interval_seconds)
