"""The fleet's ingest queue: what the broker delivers waits here for the one thread that handles it.

paho's network thread only reads messages off the socket and puts them here; the fleet link's
ingest thread takes them out and handles them (decode, the live view, the store). So a slow
handling never stops the reading, and when more arrives than the fleet can handle, the queue
degrades the way the messages allow:

- a **status** is a latest value: a newer status of a printer replaces its older one still waiting,
  in the older one's place. Each printer has at most one status waiting, so the queue never holds
  more statuses than there are printers, and the status that is handled is the newest one received:
  its age stays about one publishing interval however far handling falls behind;
- **everything else** (events, acks, availability) is handled, in order, every time, and ahead of
  the statuses waiting: under overload thousands of printers each have a status waiting, and a job's
  events, the acks that settle a dispatch (and, as the broker counts them in flight until they are
  handled, its window for more) would otherwise wait behind all of them. A printer's status
  waiting from before its event goes ahead with the event, in front of it. A status received after
  a printer's event never takes the place of a status received before it (it would then be handled
  before the event): it waits behind the event, and when the older status's turn comes it is
  dropped, as a newer one of the printer waits. Each printer's messages are handled in the order
  they arrived, less the statuses a newer one superseded.

:class:`CoalescingQueue` is pure (no threads of its own): ``put``/``put_status`` from one side,
``get`` (then ``done``) from the other, under one condition variable. ``holds`` tells the putting side
whether a printer has anything waiting or in hand, so a message that may skip the queue (a status
that says what the printer's last one said) skips it only when nothing of that printer is ahead.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Generic, Optional, TypeVar

T = TypeVar("T")

#: How many messages that are not statuses may wait before ``put`` blocks the reader (backpressure:
#: the broker then holds them, and QoS 1 ones are not lost).
MAX_WAITING = 10_000


@dataclass
class _Slot(Generic[T]):
    key: str
    item: T
    status: bool
    #: How many statuses this slot's item replaced.
    superseded: int = 0
    queued_at: float = field(default=0.0)
    #: Taken ahead, with a message of its printer that came after it: its place is passed over.
    moved: bool = False


class CoalescingQueue(Generic[T]):
    """A FIFO of messages keyed by printer, where a printer's waiting status is replaced by its next one."""

    def __init__(self, *, max_waiting: int = MAX_WAITING) -> None:
        if max_waiting < 1:
            raise ValueError("max_waiting must be at least 1")
        self.max_waiting = max_waiting
        #: Statuses, in the order they came (less those moved ahead).
        self._slots: deque[_Slot[T]] = deque()
        #: Everything else, each with its printer's status from before it: taken first.
        self._ahead: deque[_Slot[T]] = deque()
        #: Places in ``_slots`` left by statuses moved ahead.
        self._moved = 0
        #: The waiting status slot of each printer that a newer status may still replace.
        self._open: dict[str, _Slot[T]] = {}
        self._others = 0
        #: How many status slots of each printer wait (one open, the others closed by a message after them).
        self._statuses: dict[str, int] = {}
        #: How many slots of each printer wait, whatever they hold.
        self._waiting: dict[str, int] = {}
        #: The printer whose message the taker has in hand (from ``get`` to ``done``).
        self._in_hand: Optional[str] = None
        self._cond = threading.Condition()
        self._closed = False
        #: Statuses replaced by a newer one before they were handled, since the start.
        self.superseded = 0
        #: Of those, the ones dropped at their turn because a newer one waited behind another message.
        self.dropped_stale = 0

    def __len__(self) -> int:
        with self._cond:
            return self._size()

    def _size(self) -> int:
        return len(self._slots) - self._moved + len(self._ahead)

    def put_status(self, key: str, item: T) -> bool:
        """Queue printer ``key``'s status; True when it replaced a waiting one (which is then dropped)."""
        with self._cond:
            slot = self._open.get(key)
            if slot is not None:
                slot.item = item
                slot.superseded += 1
                self.superseded += 1
                return True
            slot = _Slot(key, item, True, queued_at=time.monotonic())
            self._slots.append(slot)
            self._waiting[key] = self._waiting.get(key, 0) + 1
            self._open[key] = slot
            self._statuses[key] = self._statuses.get(key, 0) + 1
            self._cond.notify()
            return False

    def put(self, key: str, item: T, timeout: Optional[float] = None) -> bool:
        """Queue a message that is never coalesced; waits while ``max_waiting`` such messages wait.

        Returns False only if ``timeout`` passed (or the queue closed) before there was room; the
        message is then queued anyway, as losing an event is worse than a longer queue.
        """
        with self._cond:
            room = self._cond.wait_for(lambda: self._others < self.max_waiting or self._closed, timeout)
            # A status waiting from before this message goes ahead with it (its printer's order holds),
            # and no longer takes a newer status's value: that would move the newer one ahead of it.
            waiting = self._open.pop(key, None)
            if waiting is not None:
                self._ahead.append(replace(waiting))
                waiting.moved = True
                self._moved += 1
            self._ahead.append(_Slot(key, item, False, queued_at=time.monotonic()))
            self._waiting[key] = self._waiting.get(key, 0) + 1
            self._others += 1
            self._cond.notify()
            return room and not self._closed

    def holds(self, key: str) -> bool:
        """Whether printer ``key`` has a message waiting here, or in the taker's hand."""
        with self._cond:
            return key in self._waiting or key == self._in_hand

    def done(self) -> None:
        """The taker is through with the message ``get`` gave it last."""
        with self._cond:
            self._in_hand = None

    def get(self, timeout: Optional[float] = None) -> Optional[tuple[str, T, bool, float]]:
        """The next message: the oldest waiting that is not a status (or a status gone ahead with its
        printer's next), else the oldest status. As (key, item, is a status, seconds it waited); None on
        timeout or once closed and empty. Its printer counts as held (``holds``) until ``done`` is called."""
        with self._cond:
            self._in_hand = None
            while True:
                if not self._cond.wait_for(lambda: self._size() or self._closed, timeout) or not self._size():
                    return None
                if self._ahead:
                    slot = self._ahead.popleft()
                else:
                    slot = self._slots.popleft()
                    if slot.moved:
                        self._moved -= 1
                        continue
                left = self._waiting[slot.key] - 1
                if left:
                    self._waiting[slot.key] = left
                else:
                    del self._waiting[slot.key]
                if not slot.status:
                    self._others -= 1
                    self._cond.notify_all()  # a reader may be waiting for room
                    break
                if self._open.get(slot.key) is slot:
                    del self._open[slot.key]
                waiting = self._statuses[slot.key] - 1
                if waiting:
                    self._statuses[slot.key] = waiting
                else:
                    del self._statuses[slot.key]
                if not waiting:
                    break
                # A newer status of this printer waits behind a message that came between: this one
                # is stale, and the newer one is handled after that message.
                self.superseded += 1
                self.dropped_stale += 1
            self._in_hand = slot.key
            return slot.key, slot.item, slot.status, time.monotonic() - slot.queued_at

    def close(self) -> None:
        """Wake every waiter; ``get`` returns what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
