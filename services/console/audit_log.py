"""The audit log's part of a page: where each record the page shows stands in the log (its
leaf, and whether the latest checkpoint covers it). The log is read within a deadline of its
own, and its failure is never the page's: a log that is down, slow or answers what the console
cannot read makes this part say so (审计日志暂不可用) and the rest of the page is shown."""

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import structlog

from services.console.clients.audit import AuditClient, Checkpoint
from services.console.sessions import Session

log = structlog.get_logger(__name__)

# Leaf look-ups of one page sent at once (an application's history has a step per action).
LOOKUPS_AT_ONCE = 8
# The root hash as a page shows it: enough to compare by eye with a witness's copy.
ROOT_SHOWN = 12

RecordState = Literal["unavailable", "absent", "uncovered", "covered"]


@dataclass(frozen=True)
class LogReading:
    """What the log said of a page's records: each one's leaf index (None: not in the log yet)
    and the latest checkpoint (None: none signed yet). Not `available`: nothing was read."""

    available: bool
    checkpoint: Checkpoint | None = None
    indexes: Mapping[str, int | None] = field(default_factory=dict)

    def index(self, record_id: object) -> int | None:
        return self.indexes.get(str(record_id))

    def state(self, record_id: object) -> RecordState:
        """unavailable; absent (not in the log yet); uncovered (in the log, but past the
        latest checkpoint); covered (by the latest checkpoint)."""
        if not self.available:
            return "unavailable"
        index = self.index(record_id)
        if index is None:
            return "absent"
        if self.checkpoint is None or not self.checkpoint.covers(index):
            return "uncovered"
        return "covered"

    @property
    def short_root(self) -> str:
        root = self.checkpoint.root_hash if self.checkpoint else ""
        return root if len(root) <= ROOT_SHOWN else root[:ROOT_SHOWN] + "…"


UNAVAILABLE = LogReading(available=False)


async def read_log(
    audit: AuditClient, session: Session, *, kind: str, record_ids: Sequence[str]
) -> LogReading:
    """The records' leaves and the latest checkpoint, read together within the deadline."""
    at_once = asyncio.Semaphore(LOOKUPS_AT_ONCE)

    async def leaf(record_id: str) -> int | None:
        async with at_once:
            return await audit.leaf(session, kind=kind, record_id=record_id)

    try:
        # The first failure cancels the other reads; the deadline cancels them all.
        async with asyncio.timeout(audit.deadline), asyncio.TaskGroup() as reads:
            checkpoint = reads.create_task(audit.checkpoint(session))
            leaves = {i: reads.create_task(leaf(i)) for i in record_ids}
    except Exception as exc:  # whatever it was, the page is shown without this part
        log.warning("console_audit_log_unavailable", kind=kind, error=repr(exc))
        return UNAVAILABLE
    return LogReading(
        available=True,
        checkpoint=checkpoint.result(),
        indexes={i: read.result() for i, read in leaves.items()},
    )
