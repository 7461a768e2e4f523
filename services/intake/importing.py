"""`sanwu events import`: a sheet of work records checked row by row with the models intake
validates with, then posted through `POST /v1/events/batch`.

A row without an event id gets one derived from its content (and, for rows of the same
content, from how many came before it in the sheet), so importing a file again, or a corrected
copy of it, records each row once."""

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
from shared.retry import retry_until_done

ROW_NAMESPACE = uuid.UUID("6f1d6c8e-2b0a-5c3e-9a7d-3e5b1c0f8a24")
PLACEHOLDER_ID = str(uuid.UUID(int=0))
RETRIED_STATUSES = frozenset({429, 502, 503, 504})
TRIES = 6
FIRST_PAUSE = 1.0  # seconds before the second try: intake restarting takes a few


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


async def post_rows(
    client: httpx.AsyncClient,
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
        for row, result in zip(chunk, await _post_batch(client, body), strict=True):
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


class IntakeBusy(Exception):
    """Intake answered with a status worth trying again (busy or briefly away)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response

    @property
    def retry_after(self) -> float | None:
        value = self.response.headers.get("Retry-After")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


def _retried(error: BaseException) -> bool:
    return isinstance(error, httpx.TransportError | IntakeBusy)


def _pause_of(error: BaseException) -> float | None:
    return error.retry_after if isinstance(error, IntakeBusy) else None


async def _post_batch(client: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    """One batch, tried again (up to TRIES times) while intake is busy or briefly away,
    after the pause its Retry-After asks for, if any: the event ids make a repeat harmless."""

    async def post() -> list[dict[str, Any]]:
        response = await client.post("/v1/events/batch", json=body)
        if response.status_code in RETRIED_STATUSES:
            raise IntakeBusy(response)
        if response.status_code != 200:
            raise ImportFailed(f"intake answered {response.status_code}: {_detail(response)}")
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    try:
        return await retry_until_done(
            post,
            event="import_batch_failed",
            retry_if=_retried,
            attempts=TRIES,
            first_pause=FIRST_PAUSE,
            pause_of=_pause_of,
        )
    except httpx.TransportError as exc:
        raise ImportFailed(f"cannot reach intake at {client.base_url} ({exc})") from exc
    except IntakeBusy as busy:
        status = busy.response.status_code
        raise ImportFailed(f"intake answered {status}: {_detail(busy.response)}") from busy


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
