"""Where the verifier and the witness read a log: its HTTP API (`HttpLog`, what a city sees)
or its tables (`DatabaseLog`, what the county's operator holds), behind one interface; and the
witness's kept state, a JSON file of the log's key and the last checkpoint found consistent."""

import json
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from services.audit.checkpoints import Checkpoint, CheckpointRefused, PublicKey, unb64
from services.audit.repository import CheckpointsRepository, LogRepository
from services.audit.service import MAX_ENTRIES, AuditLog
from shared.db import Database

Entry = tuple[int, bytes]  # (index, leaf bytes)
TIMEOUT_SECONDS = 30.0


class LogUnavailable(Exception):
    """The log could not be read: unreachable, or it refused (the message says which)."""


class LogSource(Protocol):
    async def public_key(self) -> PublicKey: ...

    async def checkpoints(self) -> list[Checkpoint]:
        """The checkpoints to check, the latest last (over HTTP: the latest alone)."""
        ...

    async def entries(self, start: int, end: int) -> list[Entry]: ...

    async def consistency(self, old: int, new: int) -> list[bytes]: ...


class HttpLog:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @classmethod
    @asynccontextmanager
    async def at(cls, url: str, *, api_key: str) -> AsyncIterator["HttpLog"]:
        headers = {"Authorization": f"Bearer {api_key}"}
        async with httpx.AsyncClient(
            base_url=url.rstrip("/"), headers=headers, timeout=TIMEOUT_SECONDS
        ) as client:
            yield cls(client)

    async def _get(self, path: str, **params: int) -> Any:
        try:
            response = await self.client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise LogUnavailable(
                f"cannot reach the log at {self.client.base_url}: {exc!r}"
            ) from exc
        if response.status_code != 200:
            try:
                detail = response.json().get("detail", "")
            except ValueError:
                detail = response.text[:200]
            raise LogUnavailable(f"the log answered {response.status_code} to {path}: {detail}")
        try:
            return response.json()
        except ValueError:
            raise LogUnavailable(f"the log's answer to {path} is not JSON") from None

    async def public_key(self) -> PublicKey:
        return PublicKey.from_json(await self._get("/v1/log/public-key"))

    async def checkpoints(self) -> list[Checkpoint]:
        return [Checkpoint.from_json(await self._get("/v1/log/checkpoint"))]

    async def entries(self, start: int, end: int) -> list[Entry]:
        found = await self._get("/v1/log/entries", start=start, end=end)
        try:
            return [(int(e["index"]), str(e["leaf"]).encode()) for e in found["entries"]]
        except (KeyError, TypeError, ValueError):
            raise LogUnavailable("the log's entries are not in the documented form") from None

    async def consistency(self, old: int, new: int) -> list[bytes]:
        found = await self._get("/v1/log/proof/consistency", **{"from": old, "to": new})
        return _hashes(found)

    async def leaf_index(self, kind: str, record_id: str) -> int:
        found = await self._get(f"/v1/log/leaf/{kind}/{record_id}")
        try:
            return int(found["index"])
        except (KeyError, TypeError, ValueError):
            raise LogUnavailable("the log's leaf look-up is not in the documented form") from None

    async def inclusion(self, index: int, size: int) -> list[bytes]:
        return _hashes(await self._get("/v1/log/proof/inclusion", index=index, size=size))


def _hashes(found: Any) -> list[bytes]:
    try:
        return [unb64(str(h), what="a proof's hash") for h in found["hashes"]]
    except (KeyError, TypeError) as exc:
        raise LogUnavailable("the log's proof is not in the documented form") from exc
    except CheckpointRefused as exc:
        raise LogUnavailable(str(exc)) from exc


class DatabaseLog:
    """The log as its tables hold it, read as any role that may read the audit schema; its
    key is the one the settings sign with."""

    def __init__(self, db: Database, *, key: PublicKey, audit_log: AuditLog) -> None:
        self.db = db
        self.key = key
        self.audit_log = audit_log

    async def public_key(self) -> PublicKey:
        return self.key

    async def checkpoints(self) -> list[Checkpoint]:
        async with self.db.connection() as connection:
            return await CheckpointsRepository(connection).every()

    async def entries(self, start: int, end: int) -> list[Entry]:
        async with self.db.connection() as connection:
            stored = await LogRepository(connection).entries(start, end)
        return [(s.index, s.body.encode()) for s in stored]

    async def consistency(self, old: int, new: int) -> list[bytes]:
        return (await self.audit_log.consistency(old, new)).hashes


async def every_entry(source: LogSource, size: int) -> AsyncIterator[Entry]:
    """The entries [0, size), page by page."""
    for start in range(0, size, MAX_ENTRIES):
        page = await source.entries(start, min(start + MAX_ENTRIES, size))
        for entry in page:
            yield entry
        if not page:
            return


# --- a witness's state --------------------------------------------------------------------


@dataclass(frozen=True)
class Kept:
    """What a witness keeps: the log's key and the last checkpoint it found consistent."""

    key: PublicKey
    checkpoint: Checkpoint

    def as_json(self) -> dict[str, Any]:
        return {"public_key": self.key.as_json(), "checkpoint": self.checkpoint.as_json()}


def read_kept(path: Path) -> tuple[PublicKey | None, Checkpoint]:
    """A witness's state file, or a checkpoint alone as the log serves it (then no key)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckpointRefused(f"cannot read {path} ({exc.strerror})") from None
    except ValueError:
        raise CheckpointRefused(f"{path} is not JSON") from None
    if isinstance(value, dict) and "checkpoint" in value:
        return PublicKey.from_json(value.get("public_key")), Checkpoint.from_json(
            value["checkpoint"]
        )
    return None, Checkpoint.from_json(value)


def read_state(path: Path) -> Kept | None:
    """A witness's state file; None when there is none yet."""
    if not path.exists():
        return None
    key, checkpoint = read_kept(path)
    if key is None:
        raise CheckpointRefused(f"{path} holds a checkpoint without the log's key")
    return Kept(key, checkpoint)


def write_kept(path: Path, kept: Kept) -> None:
    """Replace the state file at once (a crash leaves the old one or the new one)."""
    text = json.dumps(kept.as_json(), indent=2) + "\n"
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
