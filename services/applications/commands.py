"""`sanwu applications ...`: run the status consumer on its own, rebuild the view of statuses."""

from typing import Annotated

import typer

from shared.cli import PROGRESS_OPTION, echo_err

applications_app = typer.Typer(
    help="The applications service's view of statuses.", no_args_is_help=True
)


@applications_app.command("consume")
def consume() -> None:
    """Apply the status and indicator topics to the service's view and flag the units that
    lose their status, with the relay that publishes the flags' steps, without serving the API
    (until interrupted)."""
    from services.applications.config import get_settings
    from services.applications.main import blueprint
    from shared import service_commands

    settings = get_settings().model_copy(
        update={"applications_run_consumer": True, "applications_run_relay": True}
    )
    service_commands.consume(blueprint(settings), settings)


@applications_app.command("rebuild")
def rebuild(progress: Annotated[bool | None, PROGRESS_OPTION] = None) -> None:
    """Apply every status of the compacted status topic that the view lacks or holds an older
    version of, and the flags they call for. Applications and their history are kept as they
    are. Safe while the service runs."""
    from services.applications import rebuild as rebuilding
    from services.applications.config import ApplicationsSettings, get_settings
    from services.applications.main import blueprint
    from shared import service_commands
    from shared.cli import ProgressHook
    from shared.db import Database

    async def statuses(
        db: Database, settings: ApplicationsSettings, on_progress: ProgressHook | None
    ) -> rebuilding.RebuildResult:
        return await rebuilding.rebuild(db=db, settings=settings, on_progress=on_progress)

    result = service_commands.rebuild(
        get_settings, blueprint=blueprint, shown=progress, work=statuses
    )
    echo_err(
        f"rebuilt: {result.applied} statuses applied from {result.messages} messages over "
        f"{result.offsets_total} offsets ({result.malformed} malformed skipped), "
        f"{result.flagged} units flagged, {result.cleared} flags cleared, {result.seconds:.1f}s"
    )
