"""`sanwu applications ...`: run the status consumer on its own, rebuild the view of statuses."""

import contextlib
from typing import Annotated

import typer

from shared.cli import PROGRESS_OPTION, echo_err, progress_bar, require_database, run

applications_app = typer.Typer(
    help="The applications service's view of statuses.", no_args_is_help=True
)


@applications_app.command("consume")
def consume() -> None:
    """Apply the status topic to the service's view of statuses and flag the units that lose
    their status, with the relay that publishes the flags' steps, without serving the API
    (until interrupted)."""
    import asyncio

    from services.applications.config import get_settings
    from services.applications.consumer import StatusConsumer
    from services.applications.main import migrate, relay
    from shared import kafka
    from shared import logging as sanwu_logging
    from shared.db import Database

    async def run_consumer() -> None:
        settings = get_settings()
        sanwu_logging.configure(settings.log_level, json=settings.log_json)
        await migrate(settings)
        await kafka.ensure_topics(settings)
        db = Database.from_settings(settings, pool_size=3)  # the consumer and the relay
        outbox_relay = relay(db, settings)
        try:
            await asyncio.gather(
                StatusConsumer(db=db, settings=settings, on_flag=outbox_relay.wake).run(),
                outbox_relay.run(),
            )
        finally:
            await db.dispose()

    with contextlib.suppress(KeyboardInterrupt):
        run(run_consumer())


@applications_app.command("rebuild")
def rebuild(progress: Annotated[bool | None, PROGRESS_OPTION] = None) -> None:
    """Apply every status of the compacted status topic that the view lacks or holds an older
    version of, and the flags they call for. Applications and their history are kept as they
    are. Safe while the service runs."""
    from services.applications import rebuild as rebuilding
    from services.applications.config import get_settings
    from services.applications.main import migrate
    from shared.cli import ProgressHook
    from shared.db import Database

    async def run_rebuild(on_progress: ProgressHook | None) -> rebuilding.RebuildResult:
        settings = get_settings()
        await require_database()
        await migrate(settings)
        db = Database.from_settings(settings, pool_size=2)
        try:
            return await rebuilding.rebuild(db=db, settings=settings, on_progress=on_progress)
        finally:
            await db.dispose()

    with progress_bar("offsets", shown=progress) as on_progress:
        try:
            result = run(run_rebuild(on_progress))
        except rebuilding.StatusTopicMissing as exc:
            echo_err(f"nothing rebuilt: {exc}")
            raise typer.Exit(1) from exc
    echo_err(
        f"rebuilt: {result.applied} statuses applied from {result.messages} messages over "
        f"{result.offsets_total} offsets ({result.malformed} malformed skipped), "
        f"{result.flagged} units flagged, {result.cleared} flags cleared, {result.seconds:.1f}s"
    )
