"""`sanwu intake ...`: run the outbox relay on its own, purge free text now."""

import contextlib
from datetime import UTC, datetime, timedelta

import typer

from shared.cli import run

intake_app = typer.Typer(help="The intake service's workers.", no_args_is_help=True)


@intake_app.command("relay")
def relay() -> None:
    """Run the outbox relay on its own (the intake service also runs one by default)."""
    from services.intake.config import get_settings
    from services.intake.main import relay as relay_for
    from shared import logging as sanwu_logging
    from shared.db import Database

    async def run_relay() -> None:
        settings = get_settings()
        sanwu_logging.configure(settings.log_level, json=settings.log_json)
        db = Database.from_settings(settings, pool_size=2)
        try:
            await relay_for(db, settings).run()
        finally:
            await db.dispose()

    with contextlib.suppress(KeyboardInterrupt):
        run(run_relay())


@intake_app.command("purge-free-text")
def purge_free_text() -> None:
    """Remove what people wrote (summary, reason, category, platform) from events accepted
    longer ago than SANWU_FREE_TEXT_RETENTION_DAYS; prints how many events lost it. Intake
    also does this at start and daily."""
    from services.intake.config import get_settings
    from services.intake.retention import purge_free_text as purge_older
    from shared.cli import require_database
    from shared.db import Database

    async def purge() -> int:
        settings = get_settings()
        await require_database()
        db = Database.from_settings(settings, pool_size=1)
        try:
            return await purge_older(
                db,
                now=datetime.now(UTC),
                retention=timedelta(days=settings.free_text_retention_days),
            )
        finally:
            await db.dispose()

    typer.echo(run(purge()))
