"""A per-key request budget, so one leaked or runaway key cannot flood a service.

Counted in process (each instance has its own budget): the aim is to stop floods, not to meter.
"""

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from shared.errors import RateLimited


class KeyRateLimiter:
    def __init__(self, rate: str) -> None:
        self._item: RateLimitItem | None = parse(rate) if rate else None
        self._limiter = FixedWindowRateLimiter(MemoryStorage())

    def check(self, key_id: str) -> None:
        if self._item is None or self._limiter.hit(self._item, key_id):
            return
        reset_at, _ = self._limiter.get_window_stats(self._item, key_id)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise RateLimited(f"this key is limited to {self._item}", retry_after=retry_after)
