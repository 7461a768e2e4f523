"""`sanwu events import`: a sheet of work records checked row by row with the models intake
validates with, then posted through `POST /v1/events/batch`, all or nothing.

A row without an event id sends a seed derived from its content (and, for rows of the same
content, from how many came before it in the sheet); intake stores the event under an id keyed
from the seed with its secret (`derive_event_ids`). Importing a file again, or a corrected copy
of it, records each row once, and an id tells nothing of the row's matter reference to anyone
without the secret.

Every batch is first sent as a dry run: if intake would refuse any row, nothing is posted (with
`--skip-bad-rows`, those rows are left out). Only then are the batches posted. Should intake
refuse a batch even so (the registry or the key changed in between, intake went away), the
command stops there and says how many rows it stored: importing the same file again once the
cause is mended stores the rest, each row once."""

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
    seeded: bool = False  # its event_id is a seed: intake keys the event's id from it


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
    posted: bool = False  # False: intake would have refused rows, and nothing was posted


def parse_rows(
    rows: Sequence[SheetRow], record_type: RecordType
) -> tuple[list[RowEvent], list[BadRow]]:
    """Each row as an event, or why it is not one (every bad field of it)."""
    headings = {c.field: c.heading for c in COLUMNS[record_type]}
    words = {c.field: "、".join(c.choices) for c in COLUMNS[record_type] if c.choices}
    parsed: list[RowEvent] = []
    bad: list[BadRow] = []
    repeats: Counter[str] = Counter()
    given: dict[uuid.UUID, tuple[int, str]] = {}  # an id of the sheet's own: its line, content
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
        content = canonical_json(event.model_dump(mode="json", exclude={"event_id"}))
        if derived:
            repeats[content] += 1
            seed = uuid.uuid5(ROW_NAMESPACE, f"{content}#{repeats[content]}")
            event = event.model_copy(update={"event_id": seed})
        else:
            # Caught here, as intake would catch it only once the first row is stored.
            line, first = given.setdefault(event.event_id, (row.line, content))
            if first != content:
                bad.append(
                    BadRow(
                        row.line,
                        f"{headings['event_id']}(event_id): 与第{line}行编号相同而内容不同",
                    )
                )
                continue
        parsed.append(RowEvent(row.line, event, seeded=derived))
    return parsed, bad


async def post_rows(
    client: httpx.AsyncClient,
    rows: Sequence[RowEvent],
    *,
    batch_size: int,
    skip_refused: bool = False,
    progress: ProgressHook | None = None,
) -> Tally:
    """Every batch as a dry run first; then, if intake would refuse no row (or those rows are
    to be skipped), every batch posted. Counts what intake accepted, already knew and refused."""
    tally = Tally()
    refused = await _send(client, rows, batch_size=batch_size, dry_run=True, tally=tally)
    tally.accepted = tally.duplicate = 0
    if refused and not skip_refused:
        return tally
    kept = [row for row in rows if row.line not in refused]
    tally.posted = True
    try:
        late = await _send(
            client, kept, batch_size=batch_size, dry_run=False, tally=tally, on_batch=progress
        )
    except ImportFailed as exc:
        raise ImportFailed(exc.detail + _incomplete(tally)) from exc
    if late:
        lines = "; ".join(str(row) for row in tally.refused if row.line in late)
        detail = f"intake refused rows the dry run had passed ({lines})"
        raise ImportFailed(detail + _incomplete(tally))
    return tally


def _incomplete(tally: Tally) -> str:
    return (
        f"; before that, intake stored {tally.accepted} new rows of the file and knew "
        f"{tally.duplicate} already: import the same file again once the cause is mended to "
        "store the rest, each row once"
    )


async def _send(
    client: httpx.AsyncClient,
    rows: Sequence[RowEvent],
    *,
    batch_size: int,
    dry_run: bool,
    tally: Tally,
    on_batch: ProgressHook | None = None,
) -> set[int]:
    """The rows in batches (seeded rows apart from those with ids of their own); the lines
    intake refused. A real run stops at the first batch with a refusal."""
    refused: set[int] = set()
    done = 0
    for seeded in (False, True):
        group = [row for row in rows if row.seeded is seeded]
        for chunk in _chunks(group, batch_size):
            body = {"events": [r.event.model_dump(mode="json", exclude_none=True) for r in chunk]}
            params = {"dry_run": str(dry_run).lower(), "derive_event_ids": str(seeded).lower()}
            for row, result in zip(chunk, await _post_batch(client, body, params), strict=True):
                if result["status"] == "accepted":
                    tally.accepted += 1
                elif result["status"] == "duplicate":
                    tally.duplicate += 1
                else:
                    refused.add(row.line)
                    tally.refused.append(BadRow(row.line, _refusal(result.get("error") or {})))
            done += len(chunk)
            if on_batch is not None:
                on_batch(done, len(rows))
            if refused and not dry_run:
                return refused
    return refused


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


async def _post_batch(
    client: httpx.AsyncClient, body: dict[str, Any], params: dict[str, str]
) -> list[dict[str, Any]]:
    """One batch, tried again (up to TRIES times) while intake is busy or briefly away,
    after the pause its Retry-After asks for, if any: the event ids make a repeat harmless."""

    async def post() -> list[dict[str, Any]]:
        response = await client.post("/v1/events/batch", json=body, params=params)
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
