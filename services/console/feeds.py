"""What the warning pages need from reporting's warnings feed, followed per root from a kept
cursor: the newest version of every warning under the root. (The overview's count of open
warnings and its last change come with reporting's summary.)

Every read pulls at least once with the reader's own key, so what was kept for a root is only
ever shown to a key that may read that root. A feed not yet read to its end (a province's
first read) is followed a few pages per page view."""

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.console.api import Services
from services.console.sessions import Session

PAGE = 1000
PAGES_PER_READ = 5
ROOTS_KEPT = 256


@dataclass
class Followed:
    cursor: str | None = None
    caught_up: bool = False
    warnings: dict[str, dict[str, Any]] = field(default_factory=dict)  # by warning_id
    newest: dict[str, datetime] = field(default_factory=dict)  # when each was raised or cleared


class Feeds:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._warnings: OrderedDict[str, Followed] = OrderedDict()

    async def warnings(self, session: Session, *, root: str) -> tuple[list[dict[str, Any]], bool]:
        """Every warning under the root at its newest version, newest first, and whether the
        feed was read to its end."""
        followed = await self._followed_warnings(session, root=root)
        order = followed.newest
        items = sorted(
            followed.warnings.values(), key=lambda w: order[w["warning_id"]], reverse=True
        )
        return items, followed.caught_up

    async def _followed_warnings(self, session: Session, *, root: str) -> Followed:
        followed = _kept(self._warnings, root)
        await self._follow(session, followed, path="/v1/warnings", root=root, apply=_warning)
        return followed

    async def _follow(
        self, session: Session, followed: Followed, *, path: str, root: str, apply: Any
    ) -> None:
        for _ in range(PAGES_PER_READ):
            page = await self.services.get(
                "reporting",
                path,
                session=session,
                params={"root": root, "since": followed.cursor, "limit": PAGE},
            )
            for item in page["items"]:
                apply(followed, item)
            followed.cursor = page["next_cursor"]
            followed.caught_up = len(page["items"]) < PAGE
            if followed.caught_up:
                return


def _kept(kept: OrderedDict[str, Followed], root: str) -> Followed:
    followed = kept.get(root)
    if followed is None:
        followed = kept[root] = Followed()
        if len(kept) > ROOTS_KEPT:
            kept.popitem(last=False)
    kept.move_to_end(root)
    return followed


def _warning(followed: Followed, item: dict[str, Any]) -> None:
    warning_id = item["warning_id"]
    known = followed.warnings.get(warning_id)
    if known is not None and known["version"] >= item["version"]:
        return
    followed.warnings[warning_id] = item
    followed.newest[warning_id] = _newest(item)


def _newest(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item.get("cleared_at") or item["raised_at"])
