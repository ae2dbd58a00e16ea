"""A small in-process rate limiter for the public donation form.

A sliding window per client address, kept in memory: enough to blunt card-testing and
form spam from one address without another dependency or a shared store. Each worker
process counts on its own, so with N workers a client gets up to N times the limit;
behind a proxy, set up ProxyFix so request.remote_addr is the client, not the proxy.
"""

from __future__ import annotations

import threading
import time
from collections import deque


def parse_limit(text: str) -> tuple[int, float]:
    """"10/60" -> (10 requests, per 60 seconds)."""
    count, _, seconds = str(text).partition("/")
    limit, window = int(count), float(seconds or 60)
    if limit <= 0 or window <= 0:
        raise ValueError(f"rate limit {text!r}: use COUNT/SECONDS with positive numbers")
    return limit, window


class RateLimiter:
    #: Forget idle clients once this many are tracked, so memory stays bounded.
    MAX_CLIENTS = 10_000

    def __init__(self, limit: int, window_seconds: float, clock=time.monotonic):
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count one attempt by `key`; False if it is over the limit (then it is not counted)."""
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            if len(self._hits) > self.MAX_CLIENTS:
                self._forget_idle(now)
            return True

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]
