"""`sanwu evaluation ...`: run the consumer on its own, rebuild every status."""

from typing import Annotated

import typer

from shared.cli import (
    PROGRESS_OPTION,
    ProgressHook,
    echo_err,
    progress_bar,
    require_database,
    run,
)

evaluation_app = typer.Typer(help="The evaluation service's workers.", no_args_is_help=True)


@evaluation_app.command("consume")
def consume(
    relay: bool = typer.Option(True, "--relay/--no-relay", help="Also publish status changes"),
) -> None:
    """Apply the petition-event topic without serving the API, until interrupted."""
    from services.evaluation.config import get_settings
    from services.evaluation.main import blueprint
    from shared import service_commands

    settings = get_settings().model_copy(
        update={"evaluation_run_consumer": True, "status_relay_enabled": relay}
    )
    service_commands.consume(blueprint(settings, settings.clock()), settings)


@evaluation_app.command("rebuild")
def rebuild(
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Only list the (unit, period) pairs whose status or indicators differ from the live",
    ),
    progress: Annotated[bool | None, PROGRESS_OPTION] = None,
) -> None:
    """Recompute every status and work-record indicator from the petition-event topic and swap
    the result in.

    Those that come out the same keep their version; changed ones get the next version and are
    published."""
    from services.evaluation.config import get_settings
    from services.evaluation.rebuild.report import RebuildReport
    from services.evaluation.rebuild.run import RebuildRunning
    from services.evaluation.rebuild.run import rebuild as run_rebuild
    from shared.campaign import CampaignFileError

    settings = get_settings()

    async def rebuild_when_reachable(on_progress: ProgressHook | None) -> RebuildReport:
        await require_database()
        return await run_rebuild(
            settings, clock=settings.clock(), swap=not dry_run, on_progress=on_progress
        )

    with progress_bar("messages", shown=progress) as on_progress:
        try:
            report = run(rebuild_when_reachable(on_progress))
        except (CampaignFileError, RebuildRunning) as exc:
            echo_err(str(exc))
            raise typer.Exit(1) from exc
    echo_err(
        f"{report.messages:,} messages ({report.events:,} events, {report.skipped:,} skipped) "
        f"in {report.seconds:.1f} s: {report.events_per_second:,.0f} events/s; "
        f"{report.statuses:,} statuses, {report.indicators:,} indicators, "
        f"{len(report.differences):,} "
        + ("differ from the live ones" if dry_run else "changed and published")
    )
    if dry_run:
        for unit_code, period in report.differences:
            typer.echo(f"{unit_code}:{period}")
        if report.differences:
            raise typer.Exit(1)
