"""The pull feed of status changes under a root, in the order reporting applied them."""

from services.reporting.repository import FeedRepository
from services.reporting.schemas import FeedItemOut, FeedPageOut
from shared import cursors
from shared.db import Database
from shared.registry.cache import UnitRef

FEED_CURSOR = "f1"


class StatusFeed:
    def __init__(self, *, db: Database) -> None:
        self.db = db

    async def page(self, *, root: UnitRef, since: str | None, limit: int) -> FeedPageOut:
        """The changes after `since` (a `next_cursor`; None: from the beginning)."""
        after = cursors.decode_seq(FEED_CURSOR, since, field="since") if since else 0
        async with self.db.session() as session:
            repository = await FeedRepository.from_session(session)
            rows = await repository.changes_after(
                root_code=root.code, root_level=root.level, after=after, limit=limit
            )
        last = rows[-1].seq if rows else after
        return FeedPageOut(
            items=[
                FeedItemOut(
                    unit_code=r.unit_code,
                    period=r.period,
                    three_no=r.three_no,
                    version=r.version,
                    changed_at=r.changed_at,
                )
                for r in rows
            ],
            next_cursor=cursors.encode(FEED_CURSOR, str(last)),
        )
