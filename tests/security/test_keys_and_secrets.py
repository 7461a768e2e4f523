"""Keys expire, and the petitioner hashing secret has no usable default in production."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.intake.config import IntakeSettings
from services.intake.main import create_app
from shared.access import service as access_service
from shared.access.models import Role
from shared.config import Settings
from shared.db import Database
from tests.conftest import TOWNSHIP, VILLAGE, bearer, serve
from tests.support import events


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


def test_production_refuses_the_local_hashing_secret() -> None:
    with pytest.raises(ValidationError, match="PETITIONER_HASH_SECRET"):
        Settings(environment="production")
    assert Settings(environment="production", petitioner_hash_secret="s3cret-from-vault")
