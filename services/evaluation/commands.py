"""`sanwu evaluation ...`: run the consumer on its own, rebuild every status."""

import asyncio
import time

import typer

evaluation_app = typer.Typer(help="The evaluation service's workers.", no_args_is_help=True)


def echo_err(message: str) -> None:
    typer.echo(message, err=True)


@evaluation_app.command("consume")
def consume(
    relay: bool = typer.Option(True, "--relay/--no-relay", help="Also publish status changes"),
) -> None:
    """Apply the petition-event topic without serving the API, until interrupted."""
    from services.evaluation.config import get_settings
    from services.evaluation.worker import run_until_stopped
    from shared.campaign import CampaignFileError

    try:
        asyncio.run(run_until_stopped(get_settings(), relay=relay))
    except CampaignFileError as exc:
        echo_err(f"the campaign file is invalid:\n{exc}")
        raise typer.Exit(1) from exc


@evaluation_app.command("rebuild")
def rebuild(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only list the statuses that differ from the live ones"
    ),
) -> None:
    """Recompute every status from the petition-event topic and swap the result in.

    Statuses that come out the same keep their version; changed ones get the next version and
    are published."""
    from services.evaluation.config import get_settings
    from services.evaluation.rebuild import Progress, RebuildRunning
    from services.evaluation.rebuild import rebuild as run_rebuild
    from shared.campaign import CampaignFileError

    shown = 0.0

    def show(progress: Progress) -> None:
        nonlocal shown
        if time.monotonic() - shown >= 1.0:
            shown = time.monotonic()
            echo_err(f"read {progress.messages:,} messages ({progress.per_second:,.0f}/s)")

    settings = get_settings()
    try:
        report = asyncio.run(
            run_rebuild(settings, clock=settings.clock(), swap=not dry_run, progress=show)
        )
    except (CampaignFileError, RebuildRunning) as exc:
        echo_err(str(exc))
        raise typer.Exit(1) from exc
    echo_err(
        f"{report.messages:,} messages ({report.events:,} events, {report.skipped:,} skipped) "
        f"in {report.seconds:.1f} s: {report.events_per_second:,.0f} events/s; "
        f"{report.statuses:,} statuses, {len(report.differences):,} "
        + ("differ from the live ones" if dry_run else "changed and published")
    )
    if dry_run:
        for unit_code, period in report.differences:
            typer.echo(f"{unit_code}:{period}")
        if report.differences:
            raise typer.Exit(1)
