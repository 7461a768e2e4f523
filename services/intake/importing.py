"""`sanwu events import`: a sheet of work records checked row by row with the models intake
validates with, then posted through `POST /v1/events/batch`.

A row without an event id gets one derived from its content (and, for rows of the same
content, from how many came before it in the sheet), so importing a file again, or a corrected
copy of it, records each row once."""

import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from services.intake.payloads import canonical_json
from services.intake.sheets import COLUMNS, RecordType, SheetRow, as_event_fields
from shared.cli import ProgressHook
from shared.errors import DomainError
from shared.events import Event, event_adapter
from shared.problems import validation_errors

ROW_NAMESPACE = uuid.UUID("6f1d6c8e-2b0a-5c3e-9a7d-3e5b1c0f8a24")
PLACEHOLDER_ID = str(uuid.UUID(int=0))
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
TRIES = 6


class ImportFailed(DomainError):
    title = "Import failed"
    slug = "import-failed"


@dataclass(frozen=True, slots=True)
class RowEvent:
    line: int
    event: Event


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    message: str

    def __str__(self) -> str:
        return f"第{self.line}行: {self.message}"


@dataclass
class Tally:
    accepted: int = 0
    duplicate: int = 0
    refused: list[BadRow] = field(default_factory=list)


def parse_rows(
    rows: Sequence[SheetRow], record_type: RecordType
) -> tuple[list[RowEvent], list[BadRow]]:
    """Each row as an event, or why it is not one (every bad field of it)."""
    headings = {c.field: c.heading for c in COLUMNS[record_type]}
    words = {c.field: "、".join(c.choices) for c in COLUMNS[record_type] if c.choices}
    parsed: list[RowEvent] = []
    bad: list[BadRow] = []
    repeats: Counter[str] = Counter()
    for row in rows:
        fields = as_event_fields(row.values, record_type)
        derived = "event_id" not in fields
        try:
            event = event_adapter.validate_python(
                fields | {"event_id": PLACEHOLDER_ID} if derived else fields
            )
        except ValidationError as exc:
            for error in validation_errors(exc.errors()):
                name = error["field"]
                where = f"{headings[name]}({name})" if name in headings else name
                hint = f" (或 {words[name]})" if error["type"] == "enum" and name in words else ""
                bad.append(BadRow(row.line, f"{where}: {error['message']}{hint}"))
            continue
        if derived:
            content = canonical_json(event.model_dump(mode="json", exclude={"event_id"}))
            repeats[content] += 1
            event_id = uuid.uuid5(ROW_NAMESPACE, f"{content}#{repeats[content]}")
            event = event.model_copy(update={"event_id": event_id})
        parsed.append(RowEvent(row.line, event))
    return parsed, bad


def post_rows(
    client: httpx.Client,
    rows: Sequence[RowEvent],
    *,
    batch_size: int,
    progress: ProgressHook | None = None,
) -> Tally:
    """Post the rows in batches; count what intake accepted, already knew and refused."""
    tally = Tally()
    done = 0
    for chunk in _chunks(rows, batch_size):
        body = {"events": [r.event.model_dump(mode="json", exclude_none=True) for r in chunk]}
        for row, result in zip(chunk, _post_batch(client, body), strict=True):
            if result["status"] == "accepted":
                tally.accepted += 1
            elif result["status"] == "duplicate":
                tally.duplicate += 1
            else:
                tally.refused.append(BadRow(row.line, _refusal(result.get("error") or {})))
        done += len(chunk)
        if progress is not None:
            progress(done, len(rows))
    return tally


def _chunks(rows: Sequence[RowEvent], size: int) -> Iterator[Sequence[RowEvent]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _post_batch(client: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    """One batch, tried again while intake is busy or briefly away: the event ids make a
    repeat harmless."""
    for attempt in range(1, TRIES + 1):
        try:
            response = client.post("/v1/events/batch", json=body)
        except httpx.TransportError as exc:
            if attempt == TRIES:
                raise ImportFailed(f"cannot reach intake at {client.base_url} ({exc})") from exc
            time.sleep(attempt)
            continue
        if response.status_code == 200:
            results: list[dict[str, Any]] = response.json()["results"]
            return results
        if response.status_code not in RETRIED_STATUSES or attempt == TRIES:
            raise ImportFailed(f"intake answered {response.status_code}: {_detail(response)}")
        time.sleep(float(response.headers.get("Retry-After", attempt)))
    raise AssertionError("unreachable")


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.text)
    except ValueError:
        return response.text[:200]


def _refusal(problem: dict[str, Any]) -> str:
    errors = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in problem.get("errors") or [])
    detail = problem.get("detail", "refused")
    return f"intake refused it ({problem.get('status')}): {detail}" + (
        f"; {errors}" if errors else ""
    )
