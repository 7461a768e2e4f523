"""`sanwu reporting ...`: run the consumers on their own, rebuild the read model."""

from typing import Annotated

import typer

from shared.cli import PROGRESS_OPTION, echo_err

reporting_app = typer.Typer(help="The reporting service's read model.", no_args_is_help=True)


@reporting_app.command("consume")
def consume() -> None:
    """Apply the status, indicator, warning and disputes topics to the read model without
    serving the API (until interrupted)."""
    from services.reporting.config import get_settings
    from services.reporting.main import blueprint
    from shared import service_commands

    settings = get_settings().model_copy(update={"reporting_run_consumer": True})
    service_commands.consume(blueprint(settings), settings)


@reporting_app.command("rebuild")
def rebuild(progress: Annotated[bool | None, PROGRESS_OPTION] = None) -> None:
    """Rebuild the read model from the compacted status topic, into fresh tables swapped in.
    Safe while the service runs; feed cursors stay valid."""
    from services.reporting import rebuild as rebuilding
    from services.reporting.config import ReportingSettings, get_settings
    from services.reporting.main import blueprint
    from shared import service_commands
    from shared.cli import ProgressHook
    from shared.db import Database
    from shared.registry.cache import UnitRegistry

    async def read_model(
        db: Database, settings: ReportingSettings, on_progress: ProgressHook | None
    ) -> rebuilding.RebuildProgress:
        registry = UnitRegistry(db.engine)
        await registry.refresh()
        return await rebuilding.rebuild(
            db=db, settings=settings, registry=registry, on_progress=on_progress
        )

    state = service_commands.rebuild(
        get_settings, blueprint=blueprint, shown=progress, work=read_model
    )
    echo_err(
        f"rebuilt: {state.statuses} statuses from {state.messages} messages over "
        f"{state.offsets_total} offsets ({state.malformed} malformed skipped), "
        f"{state.taken_from_live} newer rows kept from the running service, "
        f"{state.feed_entries_added} feed entries added; "
        f"{state.indicator_messages} indicator and {state.warning_messages} warning messages "
        f"read, {state.warning_entries_added} warning feed entries added; {state.seconds:.1f}s"
    )
