"""`sanwu units load` records, under the registry version it creates, the units it moved to
another parent or level: what services that keep figures per ancestor re-evaluate. The units
are a province of their own (55)."""

from pathlib import Path

import sqlalchemy as sa

from shared.db import Database
from shared.registry.loader import LoadReport, load_file

HEADER = "code,name,level,parent_code\n"
PROVINCE = (
    "550000000000,测试省,province,\n"
    "550100000000,测试市,city,550000000000\n"
    "550101000000,测试县,county,550100000000\n"
    "550101100000,甲镇,township,550101000000\n"
    "550101101000,乙镇,township,550101000000\n"
)
VILLAGE = "550101100201"


def registry_file(path: Path, text: str) -> Path:
    path.write_text(HEADER + text, encoding="utf-8")
    return path


async def load(db: Database, path: Path, text: str) -> tuple[LoadReport, int, list[str]]:
    """Loads the file; (report, registry version after, codes recorded for that version)."""
    path = registry_file(path, text)
    async with db.engine.begin() as connection:
        report = await load_file(connection, path)
    async with db.engine.connect() as connection:
        version = (await connection.execute(sa.text("SELECT version FROM registry.meta"))).scalar()
        recorded = await connection.execute(
            sa.text("SELECT code FROM registry.unit_changes WHERE version = :v ORDER BY code"),
            {"v": version},
        )
        return report, int(version or 0), list(recorded.scalars())


async def test_a_load_records_the_units_it_moved_under_its_version(
    db: Database, tmp_path: Path
) -> None:
    report, first, recorded = await load(
        db, tmp_path / "new.csv", PROVINCE + f"{VILLAGE},某村,village,550101100000\n"
    )
    assert (report.added, report.moved, recorded) == (6, 0, [])

    report, renamed, recorded = await load(
        db, tmp_path / "renamed.csv", f"{VILLAGE},某村（更名）,village,550101100000\n"
    )
    assert (report.changed, report.moved, recorded) == (1, 0, [])
    assert renamed == first + 1

    report, moved, recorded = await load(
        db, tmp_path / "moved.csv", f"{VILLAGE},某村（更名）,village,550101101000\n"
    )
    assert (report.changed, report.moved, recorded) == (1, 1, [VILLAGE])
    assert moved == renamed + 1

    report, again, recorded = await load(
        db, tmp_path / "again.csv", f"{VILLAGE},某村（更名）,village,550101101000\n"
    )
    assert (report.unchanged, report.moved, again) == (1, 0, moved)
