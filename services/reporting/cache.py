"""Rendered summaries per (root, period), so that repeated reads of a province summary cost a
dictionary lookup rather than a query and a few dozen figures.

Every transaction that writes the read model sends a NOTIFY on CHANNEL on commit; each instance
starts a new generation of its cache when one arrives, whichever instance made the change (see
shared.notifications). An entry is served only if it was rendered in the current generation and
registry version, and only while the instance is listening."""

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

CHANNEL = "reporting_changes"
ENTRIES_KEPT = 2048

Stamp = tuple[int, int]  # (cache generation, registry version)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A JSON response body and its ETag (a hash of the body)."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, model: BaseModel) -> "Rendered":
        body = model.model_dump_json().encode()
        return cls(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


class SummaryCache:
    def __init__(self) -> None:
        self.generation = 0
        self.listening = False
        self._entries: OrderedDict[tuple[str, str], tuple[Stamp, Rendered]] = OrderedDict()

    def stamp(self, registry_version: int) -> Stamp | None:
        """Taken before reading the read model; None while changes cannot be seen."""
        return (self.generation, registry_version) if self.listening else None

    def get(self, key: tuple[str, str], stamp: Stamp | None) -> Rendered | None:
        entry = self._entries.get(key)
        if stamp is None or entry is None or entry[0] != stamp:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: tuple[str, str], stamp: Stamp | None, rendered: Rendered) -> None:
        if stamp is None:
            return
        self._entries[key] = (stamp, rendered)
        self._entries.move_to_end(key)
        if len(self._entries) > ENTRIES_KEPT:
            self._entries.popitem(last=False)

    def new_generation(self, *_: Any) -> None:
        self.generation += 1
        self._entries.clear()
