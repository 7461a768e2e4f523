"""The bodies of a service's `consume` and `rebuild` commands, one way for every service: the
service says which settings and migrations, and what to run on the database."""

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from shared import kafka
from shared import logging as sanwu_logging
from shared.cli import ProgressHook, echo_err, progress_bar, require_database, run
from shared.config import Settings
from shared.db import Database
from shared.topic_reading import TopicMissing

S = TypeVar("S", bound=Settings)
T = TypeVar("T")
REBUILD_POOL_SIZE = 2


def consume(
    settings_of: Callable[[], S],
    *,
    migrate: Callable[[S], Awaitable[None]],
    pool_size: int,
    work: Callable[[Database, S], Awaitable[Any]],
) -> None:
    """Migrate, create the topics and run `work` (the consumers) until interrupted."""

    async def run_consumers() -> None:
        settings = settings_of()
        sanwu_logging.configure(settings.log_level, json=settings.log_json)
        await migrate(settings)
        await kafka.ensure_topics(settings)
        db = Database.from_settings(settings, pool_size=pool_size)
        try:
            await work(db, settings)
        finally:
            await db.dispose()

    with contextlib.suppress(KeyboardInterrupt):
        run(run_consumers())


def rebuild(
    settings_of: Callable[[], S],
    *,
    migrate: Callable[[S], Awaitable[None]],
    shown: bool | None,
    work: Callable[[Database, S, ProgressHook | None], Awaitable[T]],
) -> T:
    """Migrate and run `work` (the rebuild) with a progress bar over offsets; a topic it needs
    that does not exist ends the command with one line and exit code 1."""

    async def run_rebuild(on_progress: ProgressHook | None) -> T:
        settings = settings_of()
        await require_database()
        await migrate(settings)
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
