"""A per-key request budget, so one leaked or runaway key cannot flood a service.

Counted in process (each instance has its own budget): the aim is to stop floods, not to meter.
The rate is written in the `limits` notation ("2000/second", "100000/minute", "10/5 minutes").
Each key gets fixed windows of that length, the first starting with its first request; a
dictionary lookup and an addition per request, no storage layer and no timer threads.
"""

import math
import time

from limits import RateLimitItem, parse

from shared.errors import RateLimited

# Once this many keys are held, the ones whose window has ended are forgotten.
SWEEP_ABOVE = 10_000


class KeyRateLimiter:
    def __init__(self, rate: str) -> None:
        self._item: RateLimitItem | None = parse(rate) if rate else None
        self._amount = self._item.amount if self._item else 0
        self._seconds = float(self._item.get_expiry()) if self._item else 0.0
        self._windows: dict[str, list[float]] = {}  # key id: [window start, requests in it]

    def check(self, key_id: str) -> None:
        """Count a request of the key; RateLimited (429, Retry-After) once over the budget."""
        if self._item is None:
            return
        now = time.monotonic()
        window = self._windows.get(key_id)
        if window is None or now - window[0] >= self._seconds:
            if window is None and len(self._windows) >= SWEEP_ABOVE:
                self._sweep(now)
            self._windows[key_id] = [now, 1]
            return
        window[1] += 1
        if window[1] <= self._amount:
            return
        retry_after = max(1, math.ceil(window[0] + self._seconds - now))
        raise RateLimited(f"this key is limited to {self._item}", retry_after=retry_after)

    def _sweep(self, now: float) -> None:
        self._windows = {
            key: window for key, window in self._windows.items() if now - window[0] < self._seconds
        }
