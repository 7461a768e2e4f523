"""`sanwu reporting ...`: run the status consumer on its own, rebuild the read model."""

import asyncio
import contextlib

import typer

reporting_app = typer.Typer(help="The reporting service's read model.", no_args_is_help=True)


@reporting_app.command("consume")
def consume() -> None:
    """Apply the status topic to the read model without serving the API (until interrupted)."""
    from services.reporting.config import get_settings
    from services.reporting.consumer import StatusConsumer
    from services.reporting.main import migrate
    from shared import kafka
    from shared import logging as sanwu_logging
    from shared.db import Database
    from shared.registry.cache import UnitRegistry

    async def run() -> None:
        settings = get_settings()
        sanwu_logging.configure(settings.log_level, json=settings.log_json)
        await migrate(settings)
        await kafka.ensure_topics(settings)
        db = Database.from_settings(settings, pool_size=2)
        registry = UnitRegistry(db.engine)
        refresh = asyncio.create_task(registry.keep_fresh(settings.registry_refresh_seconds))
        try:
            await registry.refresh()
            await StatusConsumer(db=db, settings=settings, registry=registry).run()
        finally:
            refresh.cancel()
            await db.dispose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@reporting_app.command("rebuild")
def rebuild() -> None:
    """Rebuild the read model from the compacted status topic, into fresh tables swapped in.
    Safe while the service runs; feed cursors stay valid."""
    from services.reporting import rebuild as rebuilding
    from services.reporting.config import get_settings
    from services.reporting.main import migrate
    from shared.db import Database
    from shared.registry.cache import UnitRegistry

    def show(state: rebuilding.RebuildProgress) -> None:
        typer.echo(
            f"read {state.offsets_read}/{state.offsets_total} offsets ({state.share:.0%}), "
            f"{state.messages} messages, {state.malformed} malformed",
            err=True,
        )

    async def run() -> rebuilding.RebuildProgress:
        settings = get_settings()
        await migrate(settings)
        db = Database.from_settings(settings, pool_size=2)
        try:
            registry = UnitRegistry(db.engine)
            await registry.refresh()
            return await rebuilding.rebuild(
                db=db, settings=settings, registry=registry, progress=show
            )
        finally:
            await db.dispose()

    try:
        state = asyncio.run(run())
    except rebuilding.StatusTopicMissing as exc:
        typer.echo(f"nothing rebuilt: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"rebuilt: {state.statuses} statuses from {state.messages} messages "
        f"({state.malformed} malformed skipped), {state.taken_from_live} newer rows kept from "
        f"the running service, {state.feed_entries_added} feed entries added, "
        f"{state.seconds:.1f}s",
        err=True,
    )
