"""Failed-attempt limits (sign-in, enrollment codes, bearer tokens): a few failures per key, then a pause.

The failures are counted in the fleet's database, so every fleet process on one database counts
together and a restart forgets nothing: an attacker gets no more guesses by spreading them over
processes or waiting for a restart. Times are wall-clock (``time.time``), shared by the processes.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Callable, Optional, Union

from ..store import Store

#: What a limiter counts failures under: a remote address, or a tuple (a name and an address).
LimitKey = Union[str, tuple[Optional[str], ...]]

#: How often, at most, a limiter forgets its scope's failures that have aged out of its window.
PRUNE_EVERY_S = 60.0


def key_text(key: LimitKey) -> str:
    """The key as stored: a string as it is, a tuple as a JSON array (no two tuples give one text)."""
    if isinstance(key, str):
        return key
    return json.dumps(list(key), separators=(",", ":"))


class StoredLimiter:
    """Allows ``attempts`` failures per key within ``window_s``; more wait until the oldest ages out.

    Each failure is a row of the store's ``failed_attempts`` table under this limiter's ``scope``
    (limiters with different scopes never mix); a success clears the key. :meth:`failed` also
    forgets the scope's failures that have aged out of the window, at most every ``prune_every_s``,
    which keeps the table small without a background thread. A database that cannot be reached is
    :class:`~fleet.errors.Unavailable` (503), like any other request that needs it.

    Requests arriving at the same moment each see the count before the others add to it, so a burst
    may get a few more tries than ``attempts`` (at most one per request served at once); processes
    sharing a database should share the limits' configuration, since each prunes with its own window.
    """

    def __init__(
        self,
        store: Store,
        scope: str,
        attempts: int = 5,
        window_s: float = 300.0,
        *,
        clock: Callable[[], float] = time.time,
        prune_every_s: float = PRUNE_EVERY_S,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"a limiter allows at least one attempt, not {attempts}")
        self.store = store
        self.scope = scope
        self.attempts = attempts
        self.window_s = window_s
        self.clock = clock
        self.prune_every_s = prune_every_s
        self._last_prune = -math.inf
        self._lock = threading.Lock()

    def wait_s(self, key: LimitKey) -> float:
        """Seconds until ``key`` may try again; 0 when it may now. Only reads the database."""
        now = self.clock()
        times = self.store.recent_failed_attempts(
            self.scope, key_text(key), since=now - self.window_s, limit=self.attempts
        )
        if len(times) < self.attempts:
            return 0.0
        return max(0.0, times[0] + self.window_s - now)

    def failed(self, key: LimitKey) -> None:
        now = self.clock()
        self.store.add_failed_attempt(self.scope, key_text(key), now=now)
        if self._prune_due(now):
            self.store.prune_failed_attempts(self.scope, before=now - self.window_s)

    def succeeded(self, key: LimitKey) -> None:
        self.store.clear_failed_attempts(self.scope, key_text(key))

    def _prune_due(self, now: float) -> bool:
        with self._lock:
            if now - self._last_prune < self.prune_every_s:
                return False
            self._last_prune = now
            return True
