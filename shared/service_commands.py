"""The bodies of a service's `consume` and `rebuild` commands, one way for every service: the
service gives its blueprint (`shared.boot`) and what to run on the database."""

import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer

from shared import boot
from shared.boot import Blueprint
from shared.campaign import CampaignFileError, system_now
from shared.cli import ProgressHook, echo_err, progress_bar, require_database, run
from shared.config import Settings, as_migrator
from shared.db import Database
from shared.topic_reading import TopicMissing

S = TypeVar("S", bound=Settings)
T = TypeVar("T")
REBUILD_POOL_SIZE = 2


def consume(blueprint: Blueprint, settings: Settings) -> None:
    """The service's consumers, relays and loops without its web app, until interrupted."""
    try:
        with contextlib.suppress(KeyboardInterrupt):
            run(boot.run_until_stopped(blueprint, settings, clock=system_now))
    except CampaignFileError as exc:
        echo_err(f"the campaign file is invalid:\n{exc}")
        raise typer.Exit(1) from exc


def rebuild(
    settings_of: Callable[[], S],
    *,
    blueprint: Callable[[S], Blueprint],
    shown: bool | None,
    work: Callable[[Database, S, ProgressHook | None], Awaitable[T]],
) -> T:
    """Migrate and run `work` (the rebuild) with a progress bar over offsets; a topic it needs
    that does not exist ends the command with one line and exit code 1."""

    async def run_rebuild(on_progress: ProgressHook | None) -> T:
        settings = as_migrator(settings_of())
        await require_database()
        await boot.migrate(blueprint(settings), settings)
        db = Database.from_settings(settings, pool_size=REBUILD_POOL_SIZE)
        try:
            return await work(db, settings, on_progress)
        finally:
            await db.dispose()

    with progress_bar("offsets", shown=shown) as on_progress:
        try:
            result: T = run(run_rebuild(on_progress))
        except TopicMissing as exc:
            echo_err(f"nothing rebuilt: {exc}")
            raise typer.Exit(1) from exc
    return result
