"""Keys expire, revocations reach every process, and the petitioner hashing secret has no
usable default outside an explicit local or test environment."""

import asyncio
import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.intake.config import IntakeSettings
from services.intake.main import create_app
from shared.access import service as access_service
from shared.access.cache import CHANNEL as KEY_CHANNEL
from shared.access.cache import KeyCache
from shared.access.models import Role
from shared.config import LOCAL_ONLY_SECRET, Settings
from shared.db import Database
from shared.errors import Unauthenticated
from shared.notifications import ChangeListener
from tests.conftest import ROOT, TOWNSHIP, VILLAGE, bearer, serve
from tests.support import events
from tests.support.processes import sanwu, uvicorn
from tests.support.stack import new_stack
from tests.support.waiting import wait_until


async def test_an_expired_key_is_refused(db: Database, settings: Settings) -> None:
    async with db.engine.begin() as connection:
        expired = await access_service.create(
            connection,
            role=Role.desk,
            scope_code=TOWNSHIP,
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
        )
        current = await access_service.create(
            connection,
            role=Role.desk,
            scope_code=TOWNSHIP,
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
    async with serve(create_app(IntakeSettings(intake_run_relay=False))) as intake:
        refused = await intake.post(
            "/v1/events", json=events.visit(VILLAGE), headers=bearer(expired)
        )
        accepted = await intake.post(
            "/v1/events", json=events.visit(VILLAGE), headers=bearer(current)
        )

    assert refused.status_code == 401 and "expired" in refused.json()["detail"]
    assert accepted.status_code == 202


def test_the_built_in_hashing_secret_is_refused_unless_local_or_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SANWU_ENVIRONMENT", raising=False)
    monkeypatch.delenv("SANWU_PETITIONER_HASH_SECRET", raising=False)
    with pytest.raises(ValidationError, match="PETITIONER_HASH_SECRET"):
        Settings()  # no environment named: production
    with pytest.raises(ValidationError, match="PETITIONER_HASH_SECRET"):
        Settings(environment="production")
    assert Settings(environment="production", petitioner_hash_secret=VAULT_SECRET)
    assert Settings(environment="local").environment == "local"
    assert Settings(environment="test").environment == "test"


VAULT_SECRET = "0123456789abcdef0123456789abcdef"  # 32 bytes, the least accepted


@pytest.mark.parametrize("secret", ["", "s3cret-from-vault", VAULT_SECRET[:-1], "密钥" * 5])
def test_a_hashing_secret_under_32_bytes_is_refused_outside_local_and_test(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SANWU_ENVIRONMENT", raising=False)
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(environment="production", petitioner_hash_secret=secret)
    assert Settings(environment="test", petitioner_hash_secret=secret)
    assert len(LOCAL_ONLY_SECRET.encode()) >= 32  # local runs use a secret long enough too


def test_a_short_secret_stops_a_process_at_start_with_one_line() -> None:
    env = os.environ | {"SANWU_ENVIRONMENT": "production", "SANWU_PETITIONER_HASH_SECRET": "short"}
    finished = subprocess.run(
        sanwu("keys", "list"), env=env, capture_output=True, text=True, timeout=60
    )

    lines = (finished.stdout + finished.stderr).strip().splitlines()
    assert finished.returncode != 0
    assert lines == [
        "sanwu: invalid settings: SANWU_PETITIONER_HASH_SECRET must be at least 32 bytes; "
        "it has 5 (make one with `openssl rand -hex 32`)"
    ]


@pytest.mark.parametrize(
    "command",
    [uvicorn("services.intake.main:create_app", 0), sanwu("keys", "list")],
    ids=["intake service", "sanwu command"],
)
def test_a_process_without_its_secret_stops_at_start_with_one_line(command: list[str]) -> None:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("SANWU_ENVIRONMENT", "SANWU_PETITIONER_HASH_SECRET")
    }
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    lines = (finished.stdout + finished.stderr).strip().splitlines()
    assert finished.returncode != 0
    assert len(lines) == 1, lines
    assert "SANWU_PETITIONER_HASH_SECRET must be set" in lines[0]


def test_every_way_of_running_names_its_environment() -> None:
    """Images and manifests are production; the local scripts and the suite say so."""
    assert "ENV SANWU_ENVIRONMENT=production" in (ROOT / "deploy" / "Dockerfile").read_text()
    k8s_config = ROOT / "deploy" / "k8s" / "base" / "platform" / "config.env"
    assert "SANWU_ENVIRONMENT=production" in k8s_config.read_text().splitlines()
    assert "SANWU_ENVIRONMENT: production" in (ROOT / "deploy" / "compose.yaml").read_text()
    assert (
        'SANWU_ENVIRONMENT="${SANWU_ENVIRONMENT:-local}"'
        in (ROOT / "deploy" / "run.sh").read_text()
    )
    assert "export SANWU_ENVIRONMENT ?= local" in (ROOT / "Makefile").read_text()
    assert new_stack().env()["SANWU_ENVIRONMENT"] == "test"


async def test_a_key_kept_in_memory_is_refused_once_revoked_elsewhere(
    db: Database, settings: Settings
) -> None:
    """Keys are kept in process after the first request; a revocation committed by another
    process reaches every instance (by NOTIFY) and the key is refused from then on."""
    async with db.engine.begin() as connection:
        key = await access_service.create(connection, role=Role.desk, scope_code=TOWNSHIP)
    keys = KeyCache(db)
    listener = asyncio.create_task(ChangeListener(settings, {KEY_CHANNEL: keys}).run())
    try:
        await wait_until(lambda: keys.listening, timeout=5, message="the key listener")
        assert (await keys.authenticate(f"Bearer {key}")).scope_code == TOWNSHIP
        async with db.engine.begin() as connection:  # another session, as another process
            assert await access_service.revoke(connection, key.split("_")[1])
        refused = await refusal_within(keys, key, seconds=2.0)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    assert "revoked" in refused


async def test_keys_are_read_from_the_database_while_changes_cannot_be_heard(
    db: Database,
) -> None:
    """Without its listener (never started, or the connection dropped), the cache keeps
    nothing: a revocation is seen by the very next request."""
    async with db.engine.begin() as connection:
        key = await access_service.create(connection, role=Role.reader, scope_code=TOWNSHIP)
    keys = KeyCache(db)
    assert (await keys.authenticate(f"Bearer {key}")).role == Role.reader
    async with db.engine.begin() as connection:
        assert await access_service.revoke(connection, key.split("_")[1])
    with pytest.raises(Unauthenticated, match="revoked"):
        await keys.authenticate(f"Bearer {key}")


async def refusal_within(keys: KeyCache, key: str, *, seconds: float) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        try:
            await keys.authenticate(f"Bearer {key}")
        except Unauthenticated as exc:
            return exc.detail
        await asyncio.sleep(0.01)
    raise AssertionError(f"the revoked key was still accepted after {seconds} s")
