"""Waiting for a condition by polling it, never by sleeping a fixed time: one loop for the suite."""

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def poll(
    produce: Callable[[], T | Awaitable[T]],
    *,
    timeout: float,
    message: str,
    interval: float = 0.05,
) -> T:
    """Calls `produce` (plain or async) until it returns something truthy and returns that;
    raises TimeoutError naming `message` when `timeout` seconds pass first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = produce()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if loop.time() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {message}")
        await asyncio.sleep(interval)


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    timeout: float = 20.0,
    message: str,
    interval: float = 0.05,
) -> float:
    """Polls `condition` until it holds; returns the seconds that took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await poll(condition, timeout=timeout, message=message, interval=interval)
    return loop.time() - started
