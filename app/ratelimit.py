"""Per-client rate limit of the web API: a token bucket per client address.

``per_minute`` requests a minute on average, bursts of up to ``per_minute``. The buckets live in this
process (a worker limits its own share); behind N workers a client gets at most N times the rate,
which is still a hard ceiling against floods and enumeration. 0 turns the limit off.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_MAX_CLIENTS = 50_000  # forget full buckets beyond this many addresses (memory bound under a flood)


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def hit(self, client: str) -> float:
        """Take one request from ``client``'s bucket: 0.0 if allowed, else seconds until the next is."""
        if self.capacity <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            b = self._buckets.get(client)
            if b is None:
                if len(self._buckets) >= _MAX_CLIENTS:
                    self._forget_full(now)
                b = self._buckets[client] = _Bucket(self.capacity, now)
            b.tokens = min(self.capacity, b.tokens + (now - b.at) * self.rate)
            b.at = now
            if b.tokens >= 1.0:
                b.tokens -= 1.0
                return 0.0
            return (1.0 - b.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.at) * self.rate >= self.capacity]
        for k in full:
            del self._buckets[k]


def retry_after(seconds: float) -> int:
    """Whole seconds for the Retry-After header (at least 1)."""
    return max(1, math.ceil(seconds))
