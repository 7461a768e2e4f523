"""What every `sanwu` command shares: messages on stderr, one handler that turns an unreachable
database or broker into one line and exit code 1, a short wait for them, and progress bars."""

import asyncio
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.engine import make_url

from shared.config import get_settings
from shared.db import is_connection_error
from shared.errors import BrokerRefused
from shared.migrate import wait_for_database

# A command waits this long for PostgreSQL or Kafka; a service starting waits longer.
COMMAND_WAIT_SECONDS = 5.0
KAFKA_ERRORS = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError)
# Local problems that `is_connection_error` would take for a lost database (it counts OSError).
LOCAL_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)

ProgressHook = Callable[[int, int], None]
PROGRESS_OPTION = typer.Option(
    "--progress/--no-progress",
    help="Show a progress bar on stderr (default: when stderr is a terminal)",
)


def echo_err(message: str) -> None:
    typer.echo(message, err=True)


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


async def require_database() -> None:
    """Fail within seconds if PostgreSQL does not answer (the services' own wait is minutes)."""
    await wait_for_database(get_settings().database_url, timeout=COMMAND_WAIT_SECONDS)


def unreachable(exc: BaseException) -> str | None:
    """One line saying which dependency could not be reached, or None for any other error."""
    if isinstance(exc, BrokerRefused):
        return exc.detail
    settings = get_settings()
    if _in_chain(exc, KAFKA_ERRORS):
        return f"cannot reach Kafka at {settings.kafka_bootstrap_servers} ({_innermost(exc)})"
    if isinstance(exc, LOCAL_ERRORS) or not is_connection_error(exc):
        return None
    url = make_url(settings.database_url)
    where = f"{url.host}:{url.port or 5432}/{url.database}"
    return f"cannot reach the database at {where} ({_innermost(exc)})"


def _in_chain(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, kinds):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _innermost(exc: BaseException) -> str:
    seen = exc
    for _ in range(10):
        cause = seen.__cause__ or getattr(seen, "orig", None)
        if not isinstance(cause, BaseException):
            break
        seen = cause
    text = str(seen)
    return text if text.startswith(type(seen).__name__) else f"{type(seen).__name__}: {text}"


class CommandApp(typer.Typer):
    """The root app: every command runs inside the one handler for unreachable dependencies."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            message = unreachable(exc)
            if message is None:
                raise
            echo_err(f"sanwu: {message}")
            sys.exit(1)


@contextmanager
def progress_bar(description: str, *, shown: bool | None) -> Iterator[ProgressHook | None]:
    """A hook `(done, total)` drawing a bar on stderr, or None when not shown; `shown=None`
    means: when stderr is a terminal."""
    if not (sys.stderr.isatty() if shown is None else shown):
        yield None
        return
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance
