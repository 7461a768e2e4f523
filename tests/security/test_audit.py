"""Who created and revoked each key, and when keys expired, is recorded and shown by
`sanwu keys audit`; every 401 and 403 is logged and counted with the key id, never the secret."""

import asyncio
import os
import pwd
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from services.intake.config import IntakeSettings
from services.intake.main import create_app
from shared.access import service as access_service
from shared.access.models import Role
from shared.config import Settings
from shared.db import Database
from tests.conftest import SIBLING_VILLAGE, TOWNSHIP, VILLAGE, bearer, serve
from tests.security.live import INTAKE, live_service
from tests.support import events
from tests.support.processes import sanwu

# What anyone may set in the environment, claiming to be someone else.
CLAIMED = {"LOGNAME": "province-director", "USER": "province-director"}


def run_sanwu(*args: str, env: dict[str, str] | None = None) -> str:
    finished = subprocess.run(
        sanwu(*args), env=os.environ | (env or {}), capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


def run_refused(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sanwu(*args), env=os.environ.copy(), capture_output=True, text=True, timeout=120
    )


def os_account() -> str:
    """The account this process runs as, by its user id."""
    return f"user:{pwd.getpwuid(os.getuid()).pw_name}"


async def audit_of(db: Database, key_id: str) -> list[dict[str, object]]:
    async with db.engine.begin() as connection:
        return await access_service.audit(connection, key_id=key_id)


def key_id_of(key: str) -> str:
    return key.split("_")[1]


async def test_the_command_line_records_who_created_and_revoked_a_key(settings: Settings) -> None:
    key = run_sanwu("keys", "create", "--role", "desk", "--scope", TOWNSHIP, env=CLAIMED).strip()
    key_id = key_id_of(key)
    run_sanwu("keys", "revoke", key_id, env=CLAIMED)

    lines = [line.split("\t") for line in run_sanwu("keys", "audit", "--key", key_id).splitlines()]

    # The operating-system account, not what LOGNAME or USER claim.
    assert os_account() != "user:province-director"
    assert [line[1:] for line in lines] == [
        ["created", key_id, "desk", TOWNSHIP, os_account()],
        ["revoked", key_id, "desk", TOWNSHIP, os_account()],
    ]
    created, revoked = (datetime.fromisoformat(line[0]) for line in lines)
    assert created <= revoked <= datetime.now(UTC)


async def test_the_command_line_records_the_actor_it_is_given(settings: Settings) -> None:
    key = run_sanwu(
        "keys", "create", "--role", "reader", "--scope", TOWNSHIP, "--actor", "县信访局 张三"
    ).strip()
    run_sanwu("keys", "revoke", key_id_of(key), "--actor", "市信访局 李四", env=CLAIMED)
    # An actor that would break the audit's lines is refused, and nothing is made.
    refused = run_refused(
        "keys", "create", "--role", "reader", "--scope", TOWNSHIP, "--actor", "a\tb"
    )

    lines = run_sanwu("keys", "audit", "--key", key_id_of(key)).splitlines()

    assert [line.split("\t")[-1] for line in lines] == ["user:县信访局 张三", "user:市信访局 李四"]
    assert refused.returncode == 2 and refused.stdout == "" and "--actor" in refused.stderr


async def test_a_change_through_an_api_records_the_admin_key(db: Database) -> None:
    admin = access_service.key_actor("0123456789ab")
    async with db.engine.begin() as connection:
        key = await access_service.create(
            connection, role=Role.reader, scope_code=TOWNSHIP, actor=admin
        )
        assert await access_service.revoke(connection, key_id_of(key), actor=admin)

    entries = await audit_of(db, key_id_of(key))

    assert [(e["action"], e["role"], e["actor"]) for e in entries] == [
        ("created", "reader", "key:0123456789ab"),
        ("revoked", "reader", "key:0123456789ab"),
    ]


async def test_an_expired_key_is_recorded_once_when_first_refused(
    settings: Settings, db: Database
) -> None:
    expires_at = datetime.now(UTC) + timedelta(seconds=1)
    async with db.engine.begin() as connection:
        key = await access_service.create(
            connection, role=Role.desk, scope_code=TOWNSHIP, expires_at=expires_at
        )
    await asyncio.sleep((expires_at - datetime.now(UTC)).total_seconds() + 0.1)
    for _ in range(2):  # two processes, each refusing it twice
        async with serve(create_app(IntakeSettings(intake_run_relay=False))) as intake:
            for _ in range(2):
                refused = await intake.post(
                    "/v1/events", json=events.visit(VILLAGE), headers=bearer(key)
                )
                assert refused.status_code == 401

    entries = await audit_of(db, key_id_of(key))

    assert [(e["action"], e["actor"]) for e in entries] == [
        ("created", os_account()),
        ("expired", "system"),
    ]
    assert entries[1]["at"] == expires_at


async def test_listing_keys_records_each_expiry_once(db: Database) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    async with db.engine.begin() as connection:
        expired = await access_service.create(
            connection, role=Role.reader, scope_code=TOWNSHIP, expires_at=past
        )
        revoked_first = await access_service.create(
            connection, role=Role.reader, scope_code=TOWNSHIP, expires_at=past
        )
        live = await access_service.create(
            connection,
            role=Role.reader,
            scope_code=TOWNSHIP,
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
    async with db.engine.begin() as connection:
        await connection.execute(
            sa.text(
                "UPDATE access.api_keys SET revoked_at = expires_at - interval '1 second' "
                "WHERE key_id = :key_id"
            ),
            {"key_id": key_id_of(revoked_first)},
        )
    for _ in range(2):
        async with db.engine.begin() as connection:
            await access_service.list_keys(connection)

    actions = {
        name: [e["action"] for e in await audit_of(db, key_id_of(key))]
        for name, key in {"expired": expired, "revoked": revoked_first, "live": live}.items()
    }

    assert actions == {
        "expired": ["created", "expired"],
        "revoked": ["created"],
        "live": ["created"],
    }


async def test_every_401_and_403_is_logged_and_counted_with_the_key_id_never_the_secret(
    settings: Settings, db: Database, keys: dict[str, str], tmp_path: Path
) -> None:
    async with db.engine.begin() as connection:
        revoked = await access_service.create(connection, role=Role.desk, scope_code=TOWNSHIP)
        assert await access_service.revoke(connection, key_id_of(revoked))
    unknown = "sanwu_0123456789ab_" + "C" * 43
    requests = {
        ("401", "missing"): {},
        ("401", "malformed"): {"Authorization": "Bearer sanwu_garbage"},
        ("401", "unknown"): bearer(unknown),
        ("401", "revoked"): bearer(revoked),
        ("403", "role"): bearer(keys["township_reader"]),
        ("403", "scope"): bearer(keys["township_desk"]),
    }
    env = {"SANWU_INTAKE_RUN_RELAY": "false"}
    with live_service(INTAKE, env=env, log_path=tmp_path / "intake.log") as service:
        async with httpx.AsyncClient(base_url=service.base_url) as client:
            for (status, _), headers in requests.items():
                response = await client.post(
                    "/v1/events", json=events.visit(SIBLING_VILLAGE), headers=headers
                )
                assert response.status_code == int(status)
        counted = {
            (status, reason): service.metric(
                "sanwu_access_refused_total", {"status": status, "reason": reason}
            )
            for status, reason in requests
        }
        logs = service.logs()
        raw_log = service.log_path.read_text()

    assert counted == dict.fromkeys(requests, 1.0)
    refusals = [
        (str(e["status"]), e["reason"], e["key_id"]) for e in logs if e["event"] == "access_refused"
    ]
    assert refusals == [
        ("401", "missing", None),
        ("401", "malformed", None),
        ("401", "unknown", "0123456789ab"),
        ("401", "revoked", key_id_of(revoked)),
        ("403", "role", key_id_of(keys["township_reader"])),
        ("403", "scope", key_id_of(keys["township_desk"])),
    ]
    for key in (unknown, revoked, keys["township_reader"], keys["township_desk"]):
        assert key.split("_")[2] not in raw_log
