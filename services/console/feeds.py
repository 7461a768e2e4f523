"""What the warning pages need from reporting's warnings feed, followed per root from a kept
cursor: the newest version of every warning under the root. (The overview's count of open
warnings and its last change come with reporting's summary.)

Every read pulls at least once with the reader's own key, so what was kept for a root is only
ever shown to a key that may read that root. A feed not yet read to its end (a province's
first read) is followed a few pages per page view."""

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from services.console.clients.reporting import EarlyWarning, ReportingClient
from services.console.sessions import Session

PAGE = 1000
PAGES_PER_READ = 5
ROOTS_KEPT = 256


@dataclass
class Followed:
    cursor: str | None = None
    caught_up: bool = False
    warnings: dict[str, EarlyWarning] = field(default_factory=dict)  # by warning_id
    newest: dict[str, datetime] = field(default_factory=dict)  # when each was raised or cleared


class Feeds:
    def __init__(self, reporting: ReportingClient) -> None:
        self.reporting = reporting
        self._warnings: OrderedDict[str, Followed] = OrderedDict()

    async def warnings(self, session: Session, *, root: str) -> tuple[list[EarlyWarning], bool]:
        """Every warning under the root at its newest version, newest first, and whether the
        feed was read to its end."""
        followed = _kept(self._warnings, root)
        for _ in range(PAGES_PER_READ):
            page = await self.reporting.warnings(
                session, root=root, since=followed.cursor, limit=PAGE
            )
            for item in page.items:
                _warning(followed, item)
            followed.cursor = page.next_cursor
            followed.caught_up = len(page.items) < PAGE
            if followed.caught_up:
                break
        order = followed.newest
        items = sorted(followed.warnings.values(), key=lambda w: order[w.warning_id], reverse=True)
        return items, followed.caught_up


def _kept(kept: OrderedDict[str, Followed], root: str) -> Followed:
    followed = kept.get(root)
    if followed is None:
        followed = kept[root] = Followed()
        if len(kept) > ROOTS_KEPT:
            kept.popitem(last=False)
    kept.move_to_end(root)
    return followed


def _warning(followed: Followed, item: EarlyWarning) -> None:
    known = followed.warnings.get(item.warning_id)
    if known is not None and known.version >= item.version:
        return
    followed.warnings[item.warning_id] = item
    followed.newest[item.warning_id] = item.cleared_at or item.raised_at
