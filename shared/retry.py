"""The one backoff policy of every background loop (consumers, outbox relays, the NOTIFY
listener): after a failure, wait 0.2 s doubling up to 5 s, with a little jitter, and log each
failure with the pause that follows. Cancellation is never retried."""

import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    wait_exponential,
    wait_random,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")

FIRST_PAUSE = 0.2
MAX_BACKOFF = 5.0
JITTER = 0.2
# A run that lasted this long was a success: the next failure starts the backoff afresh.
STABLE_SECONDS = 10.0


def backoff(
    *,
    event: str,
    on_failure: Callable[[BaseException], None] | None = None,
    retry_if: Callable[[BaseException], bool] | None = None,
    **fields: Any,
) -> AsyncRetrying:
    """Retry forever on any `Exception` (or those `retry_if` accepts; others are raised);
    each failure retried is logged as `event` (with `fields`) and passed to `on_failure` (a
    metric, say) before the pause."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if on_failure is not None and error is not None:
            on_failure(error)
        log.warning(
            event,
            error=repr(error),
            retry_in=round(state.next_action.sleep, 2) if state.next_action else None,
            attempt=state.attempt_number,
            **fields,
        )

    return AsyncRetrying(
        wait=wait_exponential(multiplier=FIRST_PAUSE, max=MAX_BACKOFF) + wait_random(0, JITTER),
        retry=retry_if_exception(retry_if) if retry_if else retry_if_exception_type(Exception),
        before_sleep=before_sleep,
    )


async def retry_until_done(
    operation: Callable[[], Awaitable[T]],
    *,
    event: str,
    on_failure: Callable[[BaseException], None] | None = None,
    **fields: Any,
) -> T:
    """`operation()`'s result, retried with backoff until it succeeds."""
    async for attempt in backoff(event=event, on_failure=on_failure, **fields):
        with attempt:
            return await operation()
    raise AssertionError("unreachable: the backoff retries forever")


async def keep_running(
    work: Callable[[], Awaitable[None]],
    *,
    event: str,
    on_failure: Callable[[BaseException], None] | None = None,
    stable_after: float = STABLE_SECONDS,
    **fields: Any,
) -> NoReturn:
    """Run `work` until cancelled, starting it again whenever it ends: after a failure with a
    growing pause, at once when it returned or had run for `stable_after` seconds (then the
    pause starts afresh)."""
    while True:
        async for attempt in backoff(event=event, on_failure=on_failure, **fields):
            with attempt:
                started = time.monotonic()
                try:
                    await work()
                except Exception:
                    if time.monotonic() - started < stable_after:
                        raise
