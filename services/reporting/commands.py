"""`sanwu reporting ...`: run the consumers on their own, rebuild the read model."""

import asyncio
import contextlib
from typing import Annotated

import typer

from shared.cli import PROGRESS_OPTION, echo_err, progress_bar, require_database, run

reporting_app = typer.Typer(help="The reporting service's read model.", no_args_is_help=True)


@reporting_app.command("consume")
def consume() -> None:
    """Apply the status, indicator and warning topics to the read model without serving the
    API (until interrupted)."""
    from services.reporting.config import get_settings
    from services.reporting.consumer import StatusConsumer
    from services.reporting.main import migrate
    from services.reporting.record_consumers import IndicatorConsumer, WarningConsumer
    from shared import kafka
    from shared import logging as sanwu_logging
    from shared.db import Database
    from shared.registry.cache import UnitRegistry

    async def run_consumer() -> None:
        settings = get_settings()
        sanwu_logging.configure(settings.log_level, json=settings.log_json)
        await migrate(settings)
        await kafka.ensure_topics(settings)
        db = Database.from_settings(settings, pool_size=4)  # three consumers and the registry
        registry = UnitRegistry(db.engine)
        refresh = asyncio.create_task(registry.keep_fresh(settings.registry_refresh_seconds))
        try:
            await registry.refresh()
            await asyncio.gather(
                StatusConsumer(db=db, settings=settings, registry=registry).run(),
                IndicatorConsumer(db=db, settings=settings, registry=registry).run(),
                WarningConsumer(db=db, settings=settings, registry=registry).run(),
            )
        finally:
            refresh.cancel()
            await db.dispose()

    with contextlib.suppress(KeyboardInterrupt):
        run(run_consumer())


@reporting_app.command("rebuild")
def rebuild(progress: Annotated[bool | None, PROGRESS_OPTION] = None) -> None:
    """Rebuild the read model from the compacted status topic, into fresh tables swapped in.
    Safe while the service runs; feed cursors stay valid."""
    from services.reporting import rebuild as rebuilding
    from services.reporting.config import get_settings
    from services.reporting.main import migrate
    from shared.cli import ProgressHook
    from shared.db import Database
    from shared.registry.cache import UnitRegistry

    async def run_rebuild(on_progress: ProgressHook | None) -> rebuilding.RebuildProgress:
        settings = get_settings()
        await require_database()
        await migrate(settings)
        db = Database.from_settings(settings, pool_size=2)
        try:
            registry = UnitRegistry(db.engine)
            await registry.refresh()
            return await rebuilding.rebuild(
                db=db, settings=settings, registry=registry, on_progress=on_progress
            )
        finally:
            await db.dispose()

    with progress_bar("offsets", shown=progress) as on_progress:
        try:
            state = run(run_rebuild(on_progress))
        except rebuilding.StatusTopicMissing as exc:
            echo_err(f"nothing rebuilt: {exc}")
            raise typer.Exit(1) from exc
    echo_err(
        f"rebuilt: {state.statuses} statuses from {state.messages} messages over "
        f"{state.offsets_total} offsets ({state.malformed} malformed skipped), "
        f"{state.taken_from_live} newer rows kept from the running service, "
        f"{state.feed_entries_added} feed entries added; "
        f"{state.indicator_messages} indicator and {state.warning_messages} warning messages "
        f"read, {state.warning_entries_added} warning feed entries added; {state.seconds:.1f}s"
    )
