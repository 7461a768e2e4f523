"""`sanwu intake ...`: run the outbox relay on its own, purge free text now.
`sanwu events ...`: templates for work records and importing filled-in sheets."""

import contextlib
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.intake.config import DEFAULT_MAX_BATCH_EVENTS
from services.intake.sheets import RecordType, SheetFormat, read_sheet, write_template
from shared.campaign import system_now
from shared.cli import PROGRESS_OPTION, echo_err, progress_bar, run
from shared.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Sequence

    from services.intake.importing import RowEvent, Tally

DEFAULT_INTAKE_URL = "http://127.0.0.1:8001"
IMPORT_BATCH_SIZE = 500

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
                now=system_now(),
                retention=timedelta(days=settings.free_text_retention_days),
            )
        finally:
            await db.dispose()

    typer.echo(run(purge()))


events_app = typer.Typer(
    help="Work records from spreadsheets: templates to fill in, and importing them.",
    no_args_is_help=True,
)


@events_app.command("template")
def template(
    out: Annotated[Path, typer.Argument(help="The file to write (.xlsx or .csv)")],
    record_type: Annotated[
        RecordType, typer.Option("--type", help="Which records the sheet holds")
    ] = RecordType.satisfaction_rating,
    sheet_format: Annotated[
        SheetFormat | None,
        typer.Option("--format", help="xlsx or csv (default: from OUT's name, else xlsx)"),
    ] = None,
) -> None:
    """Write a template with Chinese headings and one example row; the xlsx offers the
    allowed ratings and sources as lists."""
    chosen = sheet_format or (SheetFormat.csv if out.suffix.lower() == ".csv" else SheetFormat.xlsx)
    write_template(out, record_type=record_type, sheet_format=chosen)
    echo_err(f"wrote {out}")


@events_app.command("import")
def import_sheet(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".xlsx or .csv")],
    key: Annotated[
        str, typer.Option("--key", envvar="SANWU_API_KEY", help="A desk key", show_default=False)
    ],
    url: Annotated[str, typer.Option("--url", help="Intake's address")] = DEFAULT_INTAKE_URL,
    skip_bad_rows: Annotated[
        bool,
        typer.Option(
            "--skip-bad-rows", help="Post the good rows even if some are bad or intake refuses some"
        ),
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=DEFAULT_MAX_BATCH_EVENTS)
    ] = IMPORT_BATCH_SIZE,
    progress: Annotated[bool | None, PROGRESS_OPTION] = None,
) -> None:
    """Check every row, report each bad one as `第N行: field: message`, and post nothing if
    any is bad; then ask intake, as a dry run of every batch, whether it takes every row, and
    post nothing if it would refuse one (`第N行: intake refused it …`); only then post the rows
    through POST /v1/events/batch: all of the file or nothing. With --skip-bad-rows, bad and
    refused rows are left out and the rest posted. A file is at most 20 MiB (an xlsx unpacks
    to at most 200 MiB) of at most 100,000 rows. Prints how many intake accepted, already knew
    and refused; exits 1 if anything was bad or refused without --skip-bad-rows."""
    from services.intake.importing import parse_rows

    try:
        record_type, rows = read_sheet(file)
    except (InvalidInput, OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        echo_err(f"sanwu: cannot read {file}: {exc}")
        raise typer.Exit(1) from exc
    parsed, bad = parse_rows(rows, record_type)
    for row in bad:
        echo_err(str(row))
    if bad and not skip_bad_rows:
        echo_err(f"sanwu: {len({r.line for r in bad})} bad rows; nothing was posted")
        raise typer.Exit(1)
    tally = _post(
        parsed, url=url, key=key, batch_size=batch_size, skip=skip_bad_rows, progress=progress
    )
    for refusal in tally.refused:
        echo_err(str(refusal))
    if not tally.posted:
        echo_err(f"sanwu: intake would refuse {len(tally.refused)} rows; nothing was posted")
    typer.echo(
        f"accepted {tally.accepted}, already known {tally.duplicate}, "
        f"refused {len(tally.refused)}, bad rows skipped {len({r.line for r in bad})}"
    )
    if tally.refused and not skip_bad_rows:
        raise typer.Exit(1)


def _post(
    rows: "Sequence[RowEvent]",
    *,
    url: str,
    key: str,
    batch_size: int,
    skip: bool,
    progress: bool | None,
) -> "Tally":
    import httpx

    from services.intake.importing import ImportFailed, post_rows

    async def post_all() -> "Tally":
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            with progress_bar("rows", shown=progress) as hook:
                return await post_rows(
                    client, rows, batch_size=batch_size, skip_refused=skip, progress=hook
                )

    try:
        tally: Tally = run(post_all())
        return tally
    except ImportFailed as exc:
        echo_err(f"sanwu: {exc.detail}")
        raise typer.Exit(1) from exc
