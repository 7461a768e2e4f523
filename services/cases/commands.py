"""`sanwu calendar ...`: the working-day calendar's local overrides, the package's schedule
loaded again, and which years the calendar covers."""

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.cli import echo_err, run

calendar_app = typer.Typer(
    help="The working-day calendar (statutory days off, make-up working days).",
    no_args_is_help=True,
)


@calendar_app.command("load")
def load(path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load local overrides from a CSV (date,kind,name; kind holiday or workday): the days it
    names replace the calendar's, and every year it names a day of counts as covered. All or
    nothing; running services use it at once."""
    from services.commands import in_transaction
    from shared.calendar.files import CalendarFileError, read_file
    from shared.calendar.repository import CalendarRepository
    from shared.db import Database

    try:
        days = read_file(path)
    except CalendarFileError as exc:
        echo_err(f"{path}: rejected, nothing changed:\n{exc}")
        raise typer.Exit(1) from exc

    async def put(_: Database, connection: AsyncConnection) -> None:
        repository = await CalendarRepository.from_connection(connection)
        await repository.put(days, source=f"file {path.name}", seeding=False)

    run(in_transaction(put))
    years = sorted({day.day.year for day in days})
    echo_err(f"{path}: {len(days)} days loaded, covering {', '.join(map(str, years))}")


@calendar_app.command("seed")
def seed() -> None:
    """Load every year the holiday package has (after upgrading it), keeping the days and
    years loaded from local files."""
    from services.commands import in_transaction
    from shared.calendar.repository import CalendarRepository
    from shared.calendar.seed import package_days, package_source, package_years
    from shared.db import Database

    async def put(_: Database, connection: AsyncConnection) -> None:
        repository = await CalendarRepository.from_connection(connection)
        await repository.put(package_days(), source=package_source(), seeding=True)

    run(in_transaction(put))
    years = package_years()
    echo_err(f"{package_source()}: {years[0]}-{years[-1]} seeded")


@calendar_app.command("status")
def status() -> None:
    """Every year covered, with what loaded it and when (stdout); which of this year and the
    next are missing (stderr)."""
    from services.commands import in_transaction
    from shared.calendar.repository import CalendarRepository, LoadedYear
    from shared.calendar.rules import local_day
    from shared.campaign import system_now
    from shared.db import Database

    async def years(_: Database, connection: AsyncConnection) -> list[LoadedYear]:
        return await (await CalendarRepository.from_connection(connection)).years()

    loaded = run(in_transaction(years))
    for year in loaded:
        typer.echo(f"{year.year}\t{year.source}\t{year.loaded_at.isoformat()}")
    this_year = local_day(system_now()).year
    covered = {year.year for year in loaded}
    missing = [year for year in (this_year, this_year + 1) if year not in covered]
    if missing:
        echo_err(
            f"missing: {', '.join(map(str, missing))}: deadlines reaching into it are not "
            "computable until it is loaded (sanwu calendar load FILE)"
        )
    else:
        echo_err(f"{this_year} and {this_year + 1} covered")
