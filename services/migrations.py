"""Every schema owner's migrations, in the order they must run."""

from pathlib import Path

from shared import database_roles
from shared.config import Settings
from shared.db import asyncpg_dsn
from shared.migrate import REGISTRY_MIGRATIONS, upgrade

ROOT = Path(__file__).resolve().parents[1]

# (schema holding the version table, script location)
COMPONENTS: list[tuple[str, Path]] = [
    ("registry", REGISTRY_MIGRATIONS),
    ("intake", ROOT / "services" / "intake" / "migrations"),
    ("evaluation", ROOT / "services" / "evaluation" / "migrations"),
    ("reporting", ROOT / "services" / "reporting" / "migrations"),
    ("applications", ROOT / "services" / "applications" / "migrations"),
    ("console", ROOT / "services" / "console" / "migrations"),
    ("audit", ROOT / "services" / "audit" / "migrations"),
    ("cases", ROOT / "services" / "cases" / "migrations"),
    ("webhooks", ROOT / "services" / "webhooks" / "migrations"),
]


async def migrate_all(settings: Settings) -> None:
    """Every schema to head, then every service role's rights (run as the migrator)."""
    for schema, location in COMPONENTS:
        if location.exists():
            await upgrade(location, schema=schema, url=settings.database_url)
    await database_roles.grant(asyncpg_dsn(settings.database_url))
