"""The one retry policy: after a failure, wait 0.2 s doubling up to 5 s, with a little jitter,
and log each failure with the pause that follows. Cancellation is never retried.

- `keep_running`: a background loop (consumers, outbox relays, the NOTIFY listener, pollers)
  started again whenever it ends or fails;
- `retry_until_done`: a dependency waited for at start, or an operation tried again until it
  succeeds, forever or within a bound (`attempts`, `within` seconds) past which its last failure
  is raised.
"""

import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    stop_never,
    wait_exponential,
    wait_random,
)
from tenacity.stop import StopBaseT

log = structlog.get_logger(__name__)
T = TypeVar("T")

FIRST_PAUSE = 0.2
MAX_BACKOFF = 5.0
JITTER = 0.2
# A run that lasted this long was a success: the next failure starts the backoff afresh.
STABLE_SECONDS = 10.0

OnFailure = Callable[[BaseException], None]
# How long a failure itself says to wait (a server's Retry-After), or None: the backoff's.
PauseOf = Callable[[BaseException], float | None]


def backoff(
    *,
    event: str,
    on_failure: OnFailure | None = None,
    retry_if: Callable[[BaseException], bool] | None = None,
    attempts: int | None = None,
    within: float | None = None,
    first_pause: float | None = None,
    pause_of: PauseOf | None = None,
    **fields: Any,
) -> AsyncRetrying:
    """Retry on any `Exception` (or those `retry_if` accepts; others are raised), forever or
    until `attempts` tries were made or `within` seconds have passed (a pause never goes past
    them): then the last failure is raised. Each failure retried is logged as `event` (with
    `fields`) and passed to `on_failure` (a metric, say) before the pause: `first_pause`
    (FIRST_PAUSE unless given) doubling up to MAX_BACKOFF, or what `pause_of` finds in the
    failure."""
    first = FIRST_PAUSE if first_pause is None else first_pause
    growing = wait_exponential(multiplier=first, max=MAX_BACKOFF) + wait_random(0, JITTER)

    def pause(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        said = pause_of(error) if pause_of is not None and error is not None else None
        seconds = growing(state) if said is None else said
        if within is not None:
            seconds = min(seconds, max(within - (state.seconds_since_start or 0.0), 0.0))
        return seconds

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
        wait=pause,
        stop=_stop(attempts=attempts, within=within),
        retry=retry_if_exception(retry_if) if retry_if else retry_if_exception_type(Exception),
        before_sleep=before_sleep,
        reraise=True,
    )


async def retry_until_done(
    operation: Callable[[], Awaitable[T]],
    *,
    event: str,
    on_failure: OnFailure | None = None,
    retry_if: Callable[[BaseException], bool] | None = None,
    attempts: int | None = None,
    within: float | None = None,
    first_pause: float | None = None,
    pause_of: PauseOf | None = None,
    **fields: Any,
) -> T:
    """`operation()`'s result, retried with backoff until it succeeds (or, bounded by
    `attempts` or `within`, its last failure)."""
    async for attempt in backoff(
        event=event,
        on_failure=on_failure,
        retry_if=retry_if,
        attempts=attempts,
        within=within,
        first_pause=first_pause,
        pause_of=pause_of,
        **fields,
    ):
        with attempt:
            return await operation()
    raise AssertionError("unreachable: the backoff ends by a success or a failure")


async def keep_running(
    work: Callable[[], Awaitable[None]],
    *,
    event: str,
    on_failure: OnFailure | None = None,
    stable_after: float = STABLE_SECONDS,
    **fields: Any,
) -> NoReturn:
    """Run `work` until cancelled, starting it again whenever it ends: after a failure with a
    growing pause, at once when it returned or had run for `stable_after` seconds (then the
    pause starts afresh). A failure after a stable run is not logged: put what may fail
    first in `work`, the pause between rounds last."""
    while True:
        async for attempt in backoff(event=event, on_failure=on_failure, **fields):
            with attempt:
                started = time.monotonic()
                try:
                    await work()
                except Exception:
                    if time.monotonic() - started < stable_after:
                        raise


def _stop(*, attempts: int | None, within: float | None) -> StopBaseT:
    bounds = [
        *([stop_after_attempt(attempts)] if attempts is not None else []),
        *([stop_after_delay(within)] if within is not None else []),
    ]
    return stop_any(*bounds) if bounds else stop_never
