"""Rendered responses: summaries per (root, period), so that repeated reads of a province
summary cost a dictionary lookup rather than a query and a few dozen figures, and pages of
eligible and not-eligible units per (root, period, level, cursor, limit), which dashboards
poll alike; and eligible-list files per (root, period, level, format), so that a province's
export is not built again for every call. Statuses per (unit, period), kept and forgotten one by one
(`StatusCache`).

Every transaction that writes the read model sends a NOTIFY on CHANNEL on commit; each instance
starts a new generation of its cache when one arrives, whichever instance made the change (see
shared.notifications). An entry is served only if it was rendered in the current generation and
registry version, and only while the instance is listening."""

import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from pydantic import BaseModel

from shared.shared_work import SharedWork

CHANNEL = "reporting_changes"
# Which statuses a transaction changed: "unit/period" keys joined by commas, or EVERY_STATUS.
STATUS_CHANNEL = "reporting_statuses"
EVERY_STATUS = "*"
NOTIFY_PAYLOAD_BYTES = 7000  # PostgreSQL refuses a payload of 8000 bytes or more
ENTRIES_KEPT = 2048
STATUSES_KEPT = 100_000
EXPORT_BYTES_KEPT = 64 * 1024 * 1024
EXPORT_FILES_KEPT = 256

Stamp = tuple[int, int]  # (cache generation, registry version)
CacheKey = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A JSON response body and its ETag (a hash of the body)."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, model: BaseModel) -> "Rendered":
        body = model.model_dump_json().encode()
        return cls(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


class RenderedCache:
    """Rendered responses by key (a tuple of strings, the first naming the kind of response).
    Requests for a response that is being rendered under the same stamp wait for that
    rendering instead of starting their own: fifty dashboards asking for the nation right
    after a change cost one rendering, not fifty."""

    def __init__(self) -> None:
        self.generation = 0
        self.listening = False
        self._entries: OrderedDict[CacheKey, tuple[Stamp, Rendered]] = OrderedDict()
        self._rendering: SharedWork[tuple[CacheKey, Stamp], Rendered] = SharedWork()

    async def get_or_render(
        self, key: CacheKey, stamp: Stamp | None, render: Callable[[], Awaitable[Rendered]]
    ) -> Rendered:
        found = self.get(key, stamp)
        if found is not None:
            return found
        if stamp is None:
            return await render()

        async def render_and_keep() -> Rendered:
            rendered = await render()
            self.put(key, stamp, rendered)
            return rendered

        return await self._rendering.run((key, stamp), render_and_keep)

    def stamp(self, registry_version: int) -> Stamp | None:
        """Taken before reading the read model; None while changes cannot be seen."""
        return (self.generation, registry_version) if self.listening else None

    def get(self, key: CacheKey, stamp: Stamp | None) -> Rendered | None:
        entry = self._entries.get(key)
        if stamp is None or entry is None or entry[0] != stamp:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: CacheKey, stamp: Stamp | None, rendered: Rendered) -> None:
        if stamp is None:
            return
        self._entries[key] = (stamp, rendered)
        self._entries.move_to_end(key)
        if len(self._entries) > ENTRIES_KEPT:
            self._entries.popitem(last=False)

    def new_generation(self, *_: Any) -> None:
        self.generation += 1
        self._entries.clear()


StatusKey = tuple[str, str]  # (unit code, period)


def status_payload(keys: Collection[StatusKey] | None) -> str:
    """The STATUS_CHANNEL payload naming these statuses (None: every status)."""
    if keys is None:
        return EVERY_STATUS
    payload = ",".join(f"{code}/{period}" for code, period in keys)
    return payload if len(payload.encode()) < NOTIFY_PAYLOAD_BYTES else EVERY_STATUS


def status_keys(payload: str) -> list[StatusKey] | None:
    """The statuses a STATUS_CHANNEL payload names; None for every status."""
    if payload == EVERY_STATUS:
        return None
    return [tuple(key.split("/", 1)) for key in payload.split(",") if key]  # type: ignore[misc]


class StatusCache:
    """Rendered statuses by (unit, period): a unit's status is read from the database once and
    served from memory until it changes, so a village's status costs no round trip.

    Every transaction that changes statuses names them on STATUS_CHANNEL (or says every status,
    as a rebuild does); each instance forgets those when the notification arrives, and the
    instance that applied them at once. A status read while a notification arrived is not kept
    (it may predate the change), nor while the instance is not listening. An entry also keeps
    the registry version it was rendered under, since the body names the unit's place."""

    def __init__(self, entries_kept: int = STATUSES_KEPT) -> None:
        self.entries_kept = entries_kept
        self.listening = False
        self.generation = 0  # one more for every notification
        self._entries: OrderedDict[StatusKey, tuple[int, Rendered]] = OrderedDict()

    def stamp(self) -> int | None:
        """Taken before reading a status; None while changes cannot be seen."""
        return self.generation if self.listening else None

    def get(self, key: StatusKey, registry_version: int) -> Rendered | None:
        if not self.listening or (entry := self._entries.get(key)) is None:
            return None
        if entry[0] != registry_version:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(
        self, key: StatusKey, stamp: int | None, registry_version: int, rendered: Rendered
    ) -> None:
        if stamp is None or stamp != self.generation or not self.listening:
            return
        self._entries[key] = (registry_version, rendered)
        self._entries.move_to_end(key)
        if len(self._entries) > self.entries_kept:
            self._entries.popitem(last=False)

    def new_generation(self, *args: Any) -> None:
        """A notification (connection, pid, channel, payload); none when listening starts."""
        self.forget(status_keys(args[3]) if len(args) == 4 else None)

    def forget(self, keys: Collection[StatusKey] | None) -> None:
        """Drop these statuses (None: every one)."""
        self.generation += 1
        if keys is None:
            self._entries.clear()
            return
        for key in keys:
            self._entries.pop(key, None)


ExportKey = tuple[str, str, str, str]  # (root, period, level, format)

export_builds_total = Counter(
    "sanwu_reporting_export_builds_total",
    "Eligible-list files built (not served from the export cache)",
    ["format"],
)


class ExportCache:
    """Eligible-list files, served while the summary cache's stamp (the read model's generation
    and the registry's version) is the one they were built under, and not at all while changes
    cannot be seen (no stamp). At most `bytes_kept` bytes and `files_kept` files are kept, the
    least recently used going first. Requests for a file that is being built wait for that
    build instead of starting one of their own."""

    def __init__(
        self, *, bytes_kept: int = EXPORT_BYTES_KEPT, files_kept: int = EXPORT_FILES_KEPT
    ) -> None:
        self.bytes_kept = bytes_kept
        self.files_kept = files_kept
        self._stamp: Stamp | None = None  # every kept file was built under this one
        self._files: OrderedDict[ExportKey, bytes] = OrderedDict()
        self._size = 0
        self._building: SharedWork[tuple[ExportKey, Stamp], bytes] = SharedWork()

    async def get_or_build(
        self, key: ExportKey, stamp: Stamp | None, build: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        if stamp is None:
            return await build()
        if stamp == self._stamp and (content := self._files.get(key)) is not None:
            self._files.move_to_end(key)
            return content

        async def build_and_keep() -> bytes:
            content = await build()
            self._keep(key, stamp, content)
            return content

        return await self._building.run((key, stamp), build_and_keep)

    def _keep(self, key: ExportKey, stamp: Stamp, content: bytes) -> None:
        # Stamps only grow: a build under an older one is already out of date.
        if self._stamp is not None and stamp < self._stamp:
            return
        if stamp != self._stamp:
            self._stamp = stamp
            self._files.clear()
            self._size = 0
        if len(content) > self.bytes_kept:
            return
        if (old := self._files.pop(key, None)) is not None:
            self._size -= len(old)
        self._files[key] = content
        self._size += len(content)
        while self._size > self.bytes_kept or len(self._files) > self.files_kept:
            _, dropped = self._files.popitem(last=False)
            self._size -= len(dropped)
