"""Budgets per key and per client address, so one leaked or runaway key, or one client trying
keys, cannot flood a service or its database.

Counted in process (each instance has its own budget): the aim is to stop floods, not to meter.
A rate is written in the `limits` notation ("2000/second", "100000/minute", "10/5 minutes").
Each name (a key id, an address) gets fixed windows of that length, the first starting with
its first count; a dictionary lookup and an addition per count, no storage layer and no timer
threads.
"""

import math
import time

from limits import RateLimitItem, parse

from shared.errors import RateLimited

# Once this many names are held, the ones whose window has ended are forgotten.
SWEEP_ABOVE = 10_000


class FixedWindows:
    """How much each name has spent in its current window."""

    def __init__(self, rate: str) -> None:
        self.item: RateLimitItem | None = parse(rate) if rate else None
        self.amount = self.item.amount if self.item else 0
        self._seconds = float(self.item.get_expiry()) if self.item else 0.0
        self._windows: dict[str, list[float]] = {}  # name: [window start, spent in it]

    def spent(self, name: str, now: float) -> list[float]:
        """The name's current window, a new one if its last has ended."""
        window = self._windows.get(name)
        if window is None or now - window[0] >= self._seconds:
            if window is None and len(self._windows) >= SWEEP_ABOVE:
                self._sweep(now)
            window = self._windows[name] = [now, 0]
        return window

    def retry_after(self, window: list[float], now: float) -> int:
        return max(1, math.ceil(window[0] + self._seconds - now))

    def _sweep(self, now: float) -> None:
        self._windows = {
            name: window
            for name, window in self._windows.items()
            if now - window[0] < self._seconds
        }


class KeyRateLimiter:
    """Requests per key; intake's batches cost their number of events."""

    def __init__(self, rate: str) -> None:
        self._windows = FixedWindows(rate)

    def check(self, key_id: str) -> None:
        """Count a request of the key; RateLimited (429, Retry-After) once over the budget."""
        if not self._spend(key_id, 1):
            raise RateLimited(
                f"this key is limited to {self._windows.item}",
                retry_after=self._retry_after(key_id),
            )

    def check_batch(self, key_id: str, *, events: int) -> None:
        """Count a batch as its number of events, of which `check` counted one when the
        request was authenticated; RateLimited if what remains cannot cover the rest, and then
        the rest is not spent."""
        if not self._spend(key_id, events - 1):
            raise RateLimited(
                f"a batch of {events} events exceeds what remains of this key's limit of "
                f"{self._windows.item}",
                retry_after=self._retry_after(key_id),
            )

    def _spend(self, key_id: str, cost: int) -> bool:
        windows = self._windows
        if windows.item is None or cost <= 0:
            return True
        window = windows.spent(key_id, time.monotonic())
        if window[1] + cost > windows.amount:
            return False
        window[1] += cost
        return True

    def _retry_after(self, key_id: str) -> int:
        now = time.monotonic()
        return self._windows.retry_after(self._windows.spent(key_id, now), now)


class FailedAuthentications:
    """Failed authentications per name: a client address (past the limit, the address gets 429
    for anything that would cost a key lookup, until its window ends), or a key id (the
    console's sign-ins of one key, from any address)."""

    def __init__(self, rate: str, *, of: str = "from this address") -> None:
        self._windows = FixedWindows(rate)
        self._of = of

    def count(self, name: str) -> None:
        if self._windows.item is not None:
            self._windows.spent(name, time.monotonic())[1] += 1

    def check(self, name: str) -> None:
        windows = self._windows
        if windows.item is None:
            return
        now = time.monotonic()
        window = windows.spent(name, now)
        if window[1] >= windows.amount:
            raise RateLimited(
                f"too many failed authentications {self._of} (limit {windows.item})",
                retry_after=windows.retry_after(window, now),
            )
