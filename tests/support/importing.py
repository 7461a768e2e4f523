"""Running `sanwu events ...` as the tests of work-record imports do, and finding what an import
stored."""

import asyncio
import csv
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from services.intake.commands import events_app
from services.intake.config import IntakeSettings
from services.intake.importing import parse_rows
from services.intake.sheets import read_sheet
from shared.db import Database
from shared.keyed_hash import KeyedHash
from tests.support.processes import BIN

RATING_HEADINGS = ["事件编号(可空)", "单位代码", "发生时间", "评价结果", "评价来源", "事项编号"]
MEETING_HEADINGS = [
    "事件编号(可空)",
    "单位代码",
    "发生时间",
    "参会人数",
    "排查矛盾纠纷数",
    "化解数",
]


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str


async def sanwu(*args: str, env: dict[str, str] | None = None) -> Ran:
    """The command as an operator runs it, while this process keeps serving intake."""
    process = await asyncio.create_subprocess_exec(
        str(BIN / "sanwu"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=os.environ | (env or {}),
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return Ran(process.returncode, stdout.decode(), stderr.decode())


async def events(*args: str, env: dict[str, str] | None = None) -> Ran:
    """`sanwu events ...` in this process (an interpreter start costs seconds), in a thread
    while the loop keeps serving intake."""
    result = await asyncio.to_thread(CliRunner().invoke, events_app, list(args), env=env)
    return Ran(result.exit_code, result.stdout, result.stderr)


async def import_file(path: Path, url: str, key: str, *options: str) -> Ran:
    return await events("import", str(path), "--url", url, "--key", key, *options)


def write_csv(path: Path, rows: list[list[Any]], *, headings: list[str], bom: bool = True) -> Path:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(headings)
        writer.writerows(rows)
    return path


def seeds_of(path: Path) -> list[str]:
    """What the command sends as the event ids of the file's good rows: a row's own id, or the
    seed intake keys the event's id from."""
    record_type, rows = read_sheet(path)
    parsed, _ = parse_rows(rows, record_type)
    return [str(p.event.event_id) for p in parsed]


def ids_of(path: Path) -> list[str]:
    """The event ids the file's good rows are stored under (to find them in the journal)."""
    record_type, rows = read_sheet(path)
    parsed, _ = parse_rows(rows, record_type)
    keyed = KeyedHash(IntakeSettings().petitioner_hash_secret)
    return [str(keyed.event_id(p.event.event_id) if p.seeded else p.event.event_id) for p in parsed]


async def journalled(db: Database, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The events as intake keeps them: the journal's payload with the free text kept apart."""
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                "SELECT event_id::text, payload || coalesce(t.fields, '{}') "
                "FROM intake.journal j LEFT JOIN intake.free_text t USING (event_id) "
                "WHERE event_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": ids},
        )
        return {event_id: payload for event_id, payload in rows}


def ref() -> str:
    return f"事项-{uuid.uuid4().hex[:12]}"
