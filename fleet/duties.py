"""Once-only background duties, shared by every fleet process on one database.

Some work must run in exactly one place however many fleet processes serve the lab: the dispatch loop
(follow-ups of dispatch commands, the scheduler's pass), the detection of silent printers, the
sweeps of what has expired, the delivery of notifications. Each such duty is a lease in the database
(:meth:`fleet.store.Store.claim_duties`). One :class:`Duties` per process claims the duties it was
given every ``renew_s`` on its own thread: it renews those it holds and takes over any whose holder
let its lease run out (a process that died or hung). A process that stops cleanly gives its duties
back at once, so a rolling restart hands them over without waiting for an expiry.

Using it for a new duty:

* ``duties.add("notifications")`` before :meth:`Duties.start`, then ask ``duties.holds("notifications")``
  before each round of the work (it is cheap: no query), or
* ``duties.every("notifications", 5.0, deliver)``: ``deliver()`` runs on a thread of its own, every
  5 seconds, only while this process holds the duty.

``on_gain``/``on_loss`` callbacks (quick ones: they run on the claiming thread) let a duty's owner
take over what the previous holder left (the dispatch loop sends its assignments' commands again) or
drop what it kept in memory.

Safety: a holder counts its duty as held only until its lease's expiry less ``margin_s``, reckoned
from before it asked, so a holder that cannot reach the database stops acting before anyone else
may take over. Clocks must agree within that margin (one machine, or NTP). On SQLite the process
holding the database file alone (see :class:`fleet.server.SingleProcessLock`) takes every duty
whatever the table says: there is nobody to hand them to.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol

log = logging.getLogger(__name__)

#: The duties the fleet itself defines (another part may add its own name).
DISPATCH = "dispatch"  # the dispatch loop: follow-ups, the scheduler's pass, silent printers
SWEEPS = "sweeps"  # forgetting what has expired: idempotency keys, plate photos, orphan files


class LeaseStore(Protocol):
    """What :class:`Duties` needs of the store (``fleet.store.Store`` has it)."""

    def claim_duties(
        self, names: Iterable[str], holder: str, *, now: float, ttl_s: float, force: bool = False
    ) -> set[str]: ...

    def release_duty(self, name: str, holder: str) -> bool: ...


Callback = Callable[[], None]


@dataclass
class _Duty:
    name: str
    on_gain: list[Callback] = field(default_factory=list)
    on_loss: list[Callback] = field(default_factory=list)
    #: Until when (this process's clock) the duty counts as ours; -inf: not ours.
    held_until: float = float("-inf")
    #: Whether the callbacks were last told it is held.
    told_held: bool = False
    gained_at: Optional[float] = None


class Duties:
    """This process's share of the once-only duties (see the module's doc)."""

    def __init__(
        self,
        store: LeaseStore,
        holder: str,
        *,
        ttl_s: float = 5.0,
        renew_s: float = 1.0,
        margin_s: float = 1.0,
        exclusive: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < renew_s < ttl_s - margin_s:
            raise ValueError("renew_s must be positive and shorter than ttl_s - margin_s")
        self.store = store
        self.holder = holder
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.margin_s = margin_s
        #: True: no other process can run (SQLite); every duty is taken whoever held it last.
        self.exclusive = exclusive
        self.clock = clock
        self._duties: dict[str, _Duty] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._wakes: list[threading.Event] = []

    def add(
        self, name: str, *, on_gain: Optional[Callback] = None, on_loss: Optional[Callback] = None
    ) -> None:
        """Claim duty ``name`` from now on; ``on_gain``/``on_loss`` are called as this process takes
        it and loses (or gives) it back."""
        with self._lock:
            duty = self._duties.setdefault(name, _Duty(name))
            if on_gain is not None:
                duty.on_gain.append(on_gain)
            if on_loss is not None:
                duty.on_loss.append(on_loss)

    def every(self, name: str, interval_s: float, work: Callback) -> None:
        """Run ``work()`` every ``interval_s`` on a thread of its own while this process holds ``name``
        (at once when it takes it over). A failing round is logged and the next one runs as usual.
        Call it before :meth:`start`."""
        wake = threading.Event()
        self._wakes.append(wake)
        self.add(name, on_gain=wake.set)

        def loop() -> None:
            while not self._stop.is_set():
                if self.holds(name):
                    try:
                        work()
                    except Exception:
                        log.exception("the %s duty hit an error; it carries on", name)
                wake.wait(interval_s)
                wake.clear()

        self._threads.append(threading.Thread(target=loop, name=f"duty-{name}", daemon=True))

    def holds(self, name: str) -> bool:
        """Whether this process may carry out duty ``name`` now."""
        duty = self._duties.get(name)
        return duty is not None and self.clock() < duty.held_until

    def held(self) -> list[str]:
        """The duties this process holds now, by name."""
        return sorted(name for name in self._duties if self.holds(name))

    def start(self) -> None:
        """Claim at once (so a lone process starts with its duties), then keep claiming on a thread."""
        self.claim()
        claimer = threading.Thread(target=self._run, name="fleet-duties", daemon=True)
        self._threads.insert(0, claimer)
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Stop claiming, and give back what this process holds so another takes it over at once."""
        self._stop.set()
        for wake in self._wakes:
            wake.set()
        for thread in self._threads:
            thread.join(5)
        self._threads.clear()
        for duty in list(self._duties.values()):
            if duty.told_held:
                duty.held_until = float("-inf")
                self._tell(duty, held=False)
                try:
                    self.store.release_duty(duty.name, self.holder)
                except Exception:
                    log.warning("could not give back the %s duty; it passes on as its lease ends", duty.name)

    def claim(self) -> None:
        """One round: renew what is held, take over what has run out (the thread calls it)."""
        with self._lock:
            duties = list(self._duties.values())
        if not duties:
            return
        asked_at = self.clock()
        try:
            won = self.store.claim_duties(
                [d.name for d in duties], self.holder, now=asked_at, ttl_s=self.ttl_s, force=self.exclusive
            )
        except Exception as exc:
            # What is held stays held until its own deadline: a short outage changes nothing.
            log.warning("could not renew the fleet's duties: %s", exc)
            won = None
        for duty in duties:
            if won is not None:
                duty.held_until = asked_at + self.ttl_s - self.margin_s if duty.name in won else float("-inf")
            held = self.holds(duty.name)
            if held != duty.told_held:
                self._tell(duty, held)

    def _tell(self, duty: _Duty, held: bool) -> None:
        duty.told_held = held
        if held:
            duty.gained_at = self.clock()
            log.info("this process now carries out the %s duty", duty.name)
        else:
            log.info("this process no longer carries out the %s duty", duty.name)
        for callback in duty.on_gain if held else duty.on_loss:
            try:
                callback()
            except Exception:
                log.exception("a callback of the %s duty failed", duty.name)

    def _run(self) -> None:
        while not self._stop.wait(self.renew_s):
            self.claim()
