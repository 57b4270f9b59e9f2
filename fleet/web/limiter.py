"""A small in-memory limiter for sign-in attempts: a few failures per key, then a pause."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Hashable
from typing import Callable


class AttemptLimiter:
    """Allows ``attempts`` failures per key within ``window_s``; more wait until the oldest ages out.

    Kept in memory: a restart forgets it, and each fleet process counts on its own (enough to make
    guessing a password by the network slow; a real password is the actual defence).
    """

    def __init__(
        self,
        attempts: int = 5,
        window_s: float = 300.0,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._failures: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_s(self, key: Hashable) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        now = self.clock()
        with self._lock:
            times = self._recent(key, now)
            if times is None or len(times) < self.attempts:
                return 0.0
            return max(0.0, times[0] + self.window_s - now)

    def failed(self, key: Hashable) -> None:
        now = self.clock()
        with self._lock:
            times = self._recent(key, now)
            if times is None:
                if len(self._failures) >= self.max_keys:
                    self._forget_stale(now)
                times = self._failures[key] = deque(maxlen=self.attempts)
            times.append(now)

    def succeeded(self, key: Hashable) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: Hashable, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def _forget_stale(self, now: float) -> None:
        """Drop keys with no recent failure; if all are recent, the oldest half (memory stays bounded)."""
        stale = [k for k, t in self._failures.items() if not t or t[-1] <= now - self.window_s]
        for key in stale:
            del self._failures[key]
        if len(self._failures) >= self.max_keys:
            by_age = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in by_age[: len(by_age) // 2]:
                del self._failures[key]
