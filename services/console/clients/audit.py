"""What the pages read from the audit service: where a record's leaf stands in the log, and the
latest checkpoint (docs/api.md, "Audit")."""

from datetime import datetime

from services.console.clients.http import Answer, ServiceClient
from services.console.sessions import Session
from shared.errors import NotFound


class LeafIndex(Answer):
    index: int


class Checkpoint(Answer):
    """The latest signed checkpoint: it covers the leaves at positions below its size."""

    origin: str
    size: int
    root_hash: str  # base64
    time: datetime
    key_id: str

    def covers(self, index: int) -> bool:
        return index < self.size


class AuditClient:
    def __init__(self, http: ServiceClient, *, deadline: float) -> None:
        self.http = http
        # How long a page waits for all it reads of the log (services/console/audit_log.py).
        self.deadline = deadline

    async def leaf(self, session: Session, *, kind: str, record_id: str) -> int | None:
        """The position of the record's leaf; None while the log does not hold it."""
        try:
            found = await self.http.get(
                f"/v1/log/leaf/{kind}/{record_id}", LeafIndex, session=session
            )
        except NotFound:
            return None
        return found.index

    async def checkpoint(self, session: Session) -> Checkpoint | None:
        """None before the log's first checkpoint."""
        try:
            return await self.http.get("/v1/log/checkpoint", Checkpoint, session=session)
        except NotFound:
            return None
