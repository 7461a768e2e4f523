"""`sanwu units load`: all or nothing, errors by line, idempotent, seen by running services.

Units these tests add go into a province of their own, so the figures other tests compute by
hand never move."""

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from services.intake.config import IntakeSettings
from services.intake.main import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.main import create_app
from shared.config import Settings
from shared.db import Database
from shared.migrate import REGISTRY_MIGRATIONS
from shared.registry.generator import ProvinceShape, generate
from tests.conftest import TOWNSHIP, bearer, serve
from tests.support import events
from tests.support.intake import journal_has
from tests.support.waiting import wait_until

SANWU = str(Path(sys.executable).parent / "sanwu")
HEADER = "code,name,level,parent_code\n"


def own_province(province: str) -> str:
    """A province of its own for the units a test adds, so no other test's figures move."""
    return (
        f"{province}0000000000,测试省,province,\n"
        f"{province}0100000000,测试市,city,{province}0000000000\n"
        f"{province}0101000000,测试县,county,{province}0100000000\n"
        f"{province}0101100000,测试镇,township,{province}0101000000\n"
    )


def sanwu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SANWU, *args], capture_output=True, text=True, timeout=120, check=False)


async def registry_state(db: Database) -> tuple[int, int]:
    async with db.engine.connect() as connection:
        count = (
            await connection.execute(sa.text("SELECT count(*) FROM registry.units"))
        ).scalar_one()
        version = (
            await connection.execute(sa.text("SELECT version FROM registry.meta"))
        ).scalar_one()
    return count, version


BAD_FILES = {
    "unknown level": (HEADER + "340722100299,某村,hamlet,340722100000\n", "line 2: unknown level"),
    "bad code": (HEADER + "34072210029,某村,village,340722100000\n", "line 2: code"),
    "missing parent": (
        HEADER + "340722100298,甲村,village,340722100000\n340722100299,某村,village,340722177000\n",
        "line 3: parent_code 340722177000 is not a known unit",
    ),
    "cycle": (
        HEADER
        + "340722180000,甲镇,township,340722181000\n340722181000,乙镇,township,340722180000\n",
        "cycle",
    ),
    "parent below child": (
        HEADER + "340722182000,丙镇,township,340722100201\n",
        "line 2: parent 340722100201 is a village, not above a township",
    ),
    "duplicate code": (
        HEADER + "340722100297,甲村,village,340722100000\n340722100297,乙村,village,340722100000\n",
        "line 3: code 340722100297 already on line 2",
    ),
    "wrong header": ("code,name,level\n340722100297,甲村,village\n", "line 1: header"),
}


@pytest.mark.parametrize(("content", "message"), BAD_FILES.values(), ids=BAD_FILES.keys())
async def test_a_bad_file_is_rejected_with_its_line_and_changes_nothing(
    db: Database, tmp_path: Path, content: str, message: str
) -> None:
    # A good line too: it must not be loaded either.
    path = tmp_path / "units.csv"
    path.write_text(content + "340722100296,好村,village,340722100000\n", encoding="utf-8")
    before = await registry_state(db)

    result = sanwu("units", "load", str(path))

    assert result.returncode == 1
    assert message in result.stderr
    assert await registry_state(db) == before


async def test_loading_is_idempotent_and_reports_what_changed(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "units.csv"
    path.write_text(
        HEADER + own_province("36") + "360101100290,新建村,village,360101100000\n", encoding="utf-8"
    )

    first = sanwu("units", "load", str(path))
    again = sanwu("units", "load", str(path))
    path.write_text(
        HEADER + own_province("36") + "360101100290,新建村（更名）,village,360101100000\n",
        encoding="utf-8",
    )
    renamed = sanwu("units", "load", str(path))

    assert "5 units read, 5 added, 0 changed" in first.stderr, first.stderr
    assert "0 added, 0 changed, 5 unchanged" in again.stderr
    assert "0 added, 1 changed" in renamed.stderr


async def test_a_running_service_accepts_events_for_units_loaded_after_it_started(
    settings: Settings, keys: dict[str, str], tmp_path: Path
) -> None:
    async with serve(create_app(IntakeSettings(intake_run_relay=False))) as intake:
        path = tmp_path / "units.csv"
        path.write_text(
            HEADER + own_province("37") + "370101100280,后建村,village,370101100000\n",
            encoding="utf-8",
        )
        assert sanwu("units", "load", str(path)).returncode == 0

        response = await intake.post(
            "/v1/events", json=events.visit("370101100280"), headers=bearer(keys["admin"])
        )

        assert response.status_code == 202, response.text


def test_the_generator_makes_a_province_of_the_requested_shape() -> None:
    rows = list(
        generate(ProvinceShape(counties=100, townships_per_county=20, villages_per_township=15))
    )
    levels = [row[2] for row in rows]
    assert levels.count("county") == 100
    assert levels.count("township") == 2_000
    assert levels.count("village") == 30_000
    assert len({row[0] for row in rows}) == len(rows)
    assert all(len(row[0]) == 12 and row[0].isdigit() for row in rows)


async def test_keys_create_prints_the_key_alone_and_stores_only_its_hash(
    db: Database, settings: Settings
) -> None:
    result = sanwu("keys", "create", "--role", "reader", "--scope", TOWNSHIP)

    key = result.stdout.strip()
    assert result.returncode == 0 and result.stdout == key + "\n"
    key_id, secret = key.split("_")[1:]
    async with db.engine.connect() as connection:
        row = (
            await connection.execute(
                sa.text("SELECT * FROM access.api_keys WHERE key_id = :id"), {"id": key_id}
            )
        ).one()
    assert secret not in str(tuple(row)) and row.role == "reader" and row.scope_code == TOWNSHIP
    async with serve(create_app(IntakeSettings(intake_run_relay=False))) as intake:
        posted = events.visit("340722100201")
        denied = await intake.post("/v1/events", json=posted, headers=bearer(key))
    assert denied.status_code == 403  # a reader key is known (not 401) but may not post
    assert not await journal_has(db, posted["event_id"])


def test_keys_create_refuses_an_unknown_scope(settings: Settings) -> None:
    result = sanwu("keys", "create", "--role", "desk", "--scope", "340722999000")
    assert result.returncode != 0 and result.stdout == ""
    assert "unknown scope unit" in result.stderr


async def test_a_key_revoked_from_the_command_line_is_refused_by_a_running_service(
    settings: Settings, db: Database
) -> None:
    """The service keeps the key after its first request; the revocation reaches it by NOTIFY
    (a moment after `sanwu keys revoke` returns), and the next request is refused."""
    key = sanwu("keys", "create", "--role", "desk", "--scope", TOWNSHIP).stdout.strip()
    app = create_app(IntakeSettings(intake_run_relay=False))
    async with serve(app) as intake:
        keys = app.state.keys
        await wait_until(lambda: keys.listening, timeout=10, message="the key listener")
        ok = await intake.post("/v1/events", json=events.visit("340722100201"), headers=bearer(key))
        heard = keys.generation
        assert sanwu("keys", "revoke", key.split("_")[1]).returncode == 0
        await wait_until(lambda: keys.generation > heard, timeout=5, message="the revocation")
        late = events.visit("340722100201")
        refused = await intake.post("/v1/events", json=late, headers=bearer(key))
    assert ok.status_code == 202 and refused.status_code == 401
    assert not await journal_has(db, late["event_id"])


async def test_migrations_build_the_schema_from_nothing(settings: Settings) -> None:
    """The suite's database was built by `alembic upgrade head` only."""
    db = Database.from_settings(settings, pool_size=1)
    async with db.engine.connect() as connection:
        versions = (
            (
                await connection.execute(
                    sa.text(
                        "SELECT version_num FROM registry.alembic_version UNION ALL "
                        "SELECT version_num FROM intake.alembic_version"
                    )
                )
            )
            .scalars()
            .all()
        )
    await db.dispose()
    assert versions == [head(REGISTRY_MIGRATIONS), head(INTAKE_MIGRATIONS)]


def head(script_location: Path) -> str:
    """The latest revision of a migration environment, read from its scripts."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"{script_location}: several heads {heads}"
    return heads[0]
