"""One background thread that runs a node's work in order, so callers (MQTT, OctoPrint) never block."""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, Optional, Protocol

log = logging.getLogger(__name__)


class Executor(Protocol):
    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]: ...


class Worker:
    """Runs submitted calls one at a time on its own thread; calls ``idle`` when nothing came for a while."""

    def __init__(
        self,
        name: str = "crowdfab-node",
        *,
        idle: Optional[Callable[[], None]] = None,
        idle_interval: float = 0.5,
    ) -> None:
        self.name = name
        self.idle = idle
        self.idle_interval = idle_interval
        self._queue: queue.Queue[Optional[tuple[Callable[..., Any], tuple[Any, ...], Future[Any]]]] = (
            queue.Queue()
        )
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((fn, args, future))
        return future

    def close(self, timeout: float = 5.0) -> None:
        """Finish what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.idle_interval)
            except queue.Empty:
                if self.idle is not None:
                    _call(self.idle, (), None)
                continue
            if item is None:
                return
            fn, args, future = item
            _call(fn, args, future)


class InlineExecutor:
    """Runs each call at once on the caller's thread: for tests of the node's logic."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        _call(fn, args, future)
        return future


def _call(fn: Callable[..., Any], args: tuple[Any, ...], future: Optional[Future[Any]]) -> None:
    # One failing call is logged and must not stop the node.
    try:
        result = fn(*args)
    except Exception as exc:
        log.exception("node task %s failed", getattr(fn, "__name__", fn))
        if future is not None:
            future.set_exception(exc)
    else:
        if future is not None:
            future.set_result(result)
