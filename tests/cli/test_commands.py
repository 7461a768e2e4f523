"""The command line: one line and a quick non-zero exit when PostgreSQL or Kafka cannot be
reached, and a progress bar when asked for one."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from shared.db import Database

SANWU = str(Path(sys.executable).parent / "sanwu")
# Starting the interpreter takes a few seconds; the command may then wait 5 s for its database.
QUICKLY = 30.0


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sanwu(
    *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [SANWU, *args],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
        env=os.environ | (env or {}),
    )
    return result, time.monotonic() - started


def without_database() -> dict[str, str]:
    return {"SANWU_DATABASE_URL": f"postgresql+asyncpg://sanwu@127.0.0.1:{closed_port()}/sanwu"}


def assert_one_line_about(result: subprocess.CompletedProcess[str], what: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("sanwu:")]
    assert len(lines) == 1 and f"cannot reach {what}" in lines[0], result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_keys_list_without_database_says_so_in_one_line(db: Database) -> None:
    result, seconds = sanwu("keys", "list", env=without_database())

    assert_one_line_about(result, "the database")
    assert result.stdout == "" and seconds < QUICKLY


def test_units_load_without_database_fails_quickly(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "units.csv"
    path.write_text("code,name,level,parent_code\n", encoding="utf-8")

    result, seconds = sanwu("units", "load", str(path), env=without_database())

    assert_one_line_about(result, "the database")
    assert seconds < QUICKLY


def test_topics_ensure_without_kafka_says_so_in_one_line(db: Database) -> None:
    env = {"SANWU_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed_port()}"}

    result, seconds = sanwu("topics", "ensure", env=env)

    assert_one_line_about(result, "Kafka")
    assert seconds < QUICKLY


async def test_units_load_with_progress_shows_a_bar(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "units.csv"
    path.write_text(
        "code,name,level,parent_code\n"
        "390000000000,进度省,province,\n"
        "390100000000,进度市,city,390000000000\n"
        "390101000000,进度县,county,390100000000\n",
        encoding="utf-8",
    )

    shown, _ = sanwu("units", "load", "--progress", str(path))
    quiet, _ = sanwu("units", "load", str(path))

    assert shown.returncode == 0, shown.stderr
    assert "units" in shown.stderr and "3/3" in shown.stderr, shown.stderr
    assert quiet.returncode == 0 and "3/3" not in quiet.stderr, quiet.stderr
    async with db.engine.connect() as connection:
        count = await connection.scalar(
            sa.text("SELECT count(*) FROM registry.units WHERE code LIKE '39%'")
        )
    assert count == 3


def test_an_events_template_needs_no_hash_secret_but_keys_do(tmp_path: Path) -> None:
    production = {"SANWU_ENVIRONMENT": "production"}
    env = {k: v for k, v in os.environ.items() if k != "SANWU_PETITIONER_HASH_SECRET"}
    out = tmp_path / "ratings.csv"

    template = subprocess.run(
        [SANWU, "events", "template", "--format", "csv", str(out)],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
        env=env | production,
    )
    keys = subprocess.run(
        [SANWU, "keys", "list"],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
        env=env | production,
    )

    assert template.returncode == 0 and out.exists(), template.stderr
    assert keys.returncode != 0 and "SANWU_PETITIONER_HASH_SECRET" in keys.stderr, keys.stderr
