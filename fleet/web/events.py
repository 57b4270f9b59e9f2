"""Live updates for the dashboard: one producer snapshots the fleet, every browser gets the changes.

The producer thread runs only while somebody listens. It puts what changed since its last snapshot
on each subscriber's queue, encoded once, so a hundred open dashboards cost one snapshot and one
encoding, not a hundred. A subscriber whose queue fills up (a stalled browser) is dropped; its
browser reconnects.

Given a ``refresh``, the hub is driven by change notes (:meth:`LiveHub.mark`, which the fleet's
change hooks call): it reads again only what a note names, at most once per ``interval_s`` (notes in
between are gathered into one refresh), and nothing at all while nothing changes. Every
``resync_s`` it takes a full snapshot anyway, for changes no hook of this process saw (on
PostgreSQL, another fleet process's changes reach the hooks through the database's change notes:
this is the safety net behind them). Without a ``refresh`` it takes a full snapshot every
``interval_s``. Either way, a pass that takes longer than half the interval (a very large fleet)
spaces the next one out, so the producer never takes more than half of a core from the printers'
traffic.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)

#: A snapshot: {"printers": {printer id: card}, "queue": signature}.
Snapshot = dict[str, Any]


@dataclass(frozen=True)
class Message:
    """One server-sent event."""

    event: str
    data: dict[str, Any]

    @functools.cached_property
    def _text(self) -> str:
        return f"event: {self.event}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n"

    def encode(self) -> str:
        """The event as text/event-stream lines (worked out once, however many browsers get it)."""
        return self._text


def changes(before: Optional[Snapshot], after: Snapshot) -> list[Message]:
    """The events that take a browser from ``before`` (None: nothing yet) to ``after``."""
    old_printers: dict[str, Any] = before["printers"] if before else {}
    new_printers: dict[str, Any] = after["printers"]
    changed = [card for pid, card in new_printers.items() if old_printers.get(pid) != card]
    removed = [pid for pid in old_printers if pid not in new_printers]
    out = []
    if changed or removed:
        out.append(Message("printers", {"changed": changed, "removed": removed}))
    if before is None or before["queue"] != after["queue"]:
        out.append(Message("queue", {"signature": after["queue"]}))
    return out


@dataclass
class Pending:
    """What the change notes since the last pass named: printers whose record or live view changed."""

    printers: set[str] = field(default_factory=set)
    live: set[str] = field(default_factory=set)
    queue: bool = False
    #: Anything may have changed: the next pass takes a full snapshot.
    everything: bool = False

    def __bool__(self) -> bool:
        return bool(self.printers or self.live or self.queue or self.everything)


#: Refreshes the last snapshot with what a :class:`Pending` names, returning the new snapshot.
Refresh = Callable[[Snapshot, Pending], Snapshot]


class Subscription:
    """One browser's share of the updates; ``None`` on its queue means it was dropped."""

    def __init__(self, size: int) -> None:
        self.queue: queue.Queue[Optional[Message]] = queue.Queue(size)

    def get(self, timeout: float) -> Optional[Message]:
        """The next message; raises :class:`queue.Empty` after ``timeout``."""
        return self.queue.get(timeout=timeout)


@dataclass(eq=False)
class LiveHub:
    """Fans one producer's snapshots out to at most ``max_clients`` subscribers."""

    snapshot: Callable[[], Snapshot]
    _: KW_ONLY
    interval_s: float = 0.5
    max_clients: int = 4
    queue_size: int = 32
    refresh: Optional[Refresh] = None
    resync_s: float = 30.0
    _subscribers: list[Subscription] = field(default_factory=list, init=False, repr=False)
    _last: Optional[Snapshot] = field(default=None, init=False, repr=False)
    _pending: Pending = field(default_factory=Pending, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _thread: Optional[threading.Thread] = field(default=None, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _wake: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    #: Full snapshots taken, and refreshes of what notes named (``/api/v1/metrics`` need not know).
    snapshots: int = field(default=0, init=False)
    refreshes: int = field(default=0, init=False)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._subscribers)

    @property
    def producing(self) -> bool:
        """Whether the producer runs (it stops soon after its last subscriber leaves)."""
        with self._lock:
            return self._thread is not None

    def subscribe(self) -> Optional[Subscription]:
        """A new subscription primed with the current state, or None when the hub is full."""
        with self._lock:
            if len(self._subscribers) >= self.max_clients:
                return None
            sub = Subscription(self.queue_size)
            if self._thread is not None and self._last is not None:
                for message in changes(None, self._last):
                    sub.queue.put_nowait(message)
            self._subscribers.append(sub)
            if self._thread is None:
                # A fresh producer starts from nothing: everybody gets everything, as it is now. What
                # the last producer saw is stale (nobody listened since), so nobody is primed with it.
                self._last = None
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="dashboard-live", daemon=True)
                self._thread.start()
            return sub

    def mark(
        self,
        printers: Iterable[str] = (),
        live: Iterable[str] = (),
        queue: bool = False,
        everything: bool = False,
    ) -> None:
        """Note that printers' records (``printers``), their live views (``live``), the queue, or
        ``everything`` (a full snapshot next) changed.

        Cheap, and safe from any thread; ignored while nobody listens (a producer that starts takes
        a full snapshot).
        """
        with self._lock:
            if self._thread is None:
                return
            self._pending.printers.update(printers)
            self._pending.live.update(live)
            self._pending.queue = self._pending.queue or queue
            self._pending.everything = self._pending.everything or everything
        self._wake.set()

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def close(self) -> None:
        """Stop the producer and drop every subscriber."""
        with self._lock:
            thread, self._thread = self._thread, None
            for sub in self._subscribers:
                self._drop(sub)
            self._subscribers.clear()
            self._stop.set()
            self._wake.set()
        if thread is not None:
            thread.join(5)

    def _run(self) -> None:
        next_resync = float("-inf")
        while not self._stop.is_set():
            started = time.monotonic()
            with self._lock:
                pending, self._pending = self._pending, Pending()
                last = self._last
            current: Optional[Snapshot] = None
            try:
                if self.refresh is None or last is None or started >= next_resync or pending.everything:
                    next_resync = started + self.resync_s
                    current = self.snapshot()
                    self.snapshots += 1
                elif pending:
                    current = self.refresh(last, pending)
                    self.refreshes += 1
            except Exception:
                log.exception("the dashboard could not take a snapshot of the fleet")
            with self._lock:
                if not self._subscribers or threading.current_thread() is not self._thread:
                    if threading.current_thread() is self._thread:
                        self._thread = None
                    return
                if current is not None:
                    self._publish(current)
            took = time.monotonic() - started
            self._stop.wait(max(self.interval_s - took, took))
            if self.refresh is not None:
                # Driven: sleep until a note arrives (or the resync is due), then gather for one pass.
                self._wake.wait(max(0.0, next_resync - time.monotonic()))
                self._wake.clear()

    def _publish(self, current: Snapshot) -> None:
        """Queue what changed since the last snapshot for every subscriber (the lock is held)."""
        for message in changes(self._last, current):
            message.encode()  # here, once, rather than in each browser's thread
            for sub in list(self._subscribers):
                try:
                    sub.queue.put_nowait(message)
                except queue.Full:
                    self._subscribers.remove(sub)
                    self._drop(sub)
        self._last = current

    @staticmethod
    def _drop(sub: Subscription) -> None:
        """Tell a subscriber it is dropped, making room on its full queue if need be."""
        while True:
            try:
                sub.queue.put_nowait(None)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    sub.queue.get_nowait()


def event_stream(
    hub: LiveHub,
    sub: Subscription,
    *,
    lifetime_s: float,
    heartbeat_s: float,
    clock: Callable[[], float],
    disconnected: Callable[[], bool] = lambda: False,
    poll_s: float = 1.0,
) -> Iterator[str]:
    """The text/event-stream body for one browser; it ends after ``lifetime_s`` (the browser reconnects).

    ``disconnected`` tells whether the browser has gone (waitress knows); it is asked every ``poll_s``
    so a closed tab frees its thread and its place within seconds, not at the next heartbeat.
    """
    start = clock()
    deadline = start + lifetime_s
    quiet_since = start
    try:
        # A browser whose stream broke (its fleet process stopped) comes back, to another one behind
        # the load balancer, a second later.
        yield "retry: 1000\n\n"
        while clock() < deadline and not disconnected():
            try:
                message = sub.get(timeout=poll_s)
            except queue.Empty:
                if clock() - quiet_since >= heartbeat_s:
                    quiet_since = clock()
                    yield ": keep-alive\n\n"
                continue
            if message is None:
                return
            quiet_since = clock()
            yield message.encode()
    finally:
        hub.unsubscribe(sub)
