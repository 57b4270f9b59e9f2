"""Changes other fleet processes commit, heard through PostgreSQL's ``LISTEN``.

The database's triggers (:data:`fleet.store.migrations.CHANGE_NOTES_DDL`) announce each committed
change of a job or a printer on :data:`~fleet.store.migrations.CHANGE_CHANNEL`, in the transaction
that makes it: a rolled-back change announces nothing, and a committed one is announced to every
process listening. :class:`ChangeListener` keeps one connection of its own listening, on its own
thread, and hands each note to its owner. Notes sent while it was not listening are lost to it, so
after every reconnect it says so (``on_missed``) and its owner looks at everything again.

SQLite has no such thing: it serves a single fleet process, whose own change hooks see everything.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy.engine import make_url

from .migrations import CHANGE_CHANNEL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChangeNote:
    """What one committed change named: a job (with its new state) or a printer, and the printers
    whose cards it may change."""

    kind: str  # "job" or "printer"
    state: str  # the row's new state, or "removed"
    printer_ids: tuple[str, ...]
    job_id: Optional[int] = None


def parse_note(payload: str) -> Optional[ChangeNote]:
    """The note a trigger sent, or None for a payload this version does not know (a newer trigger's)."""
    parts = payload.split(" ")
    try:
        if parts[0] == "job" and len(parts) in (4, 5):
            printers = tuple(dict.fromkeys(p for p in parts[3:] if p))
            return ChangeNote("job", parts[2], printers, int(parts[1]))
        if parts[0] == "printer" and len(parts) == 3 and parts[1]:
            return ChangeNote("printer", parts[2], (parts[1],))
    except ValueError:
        pass
    return None


def listen_url(database_url: str) -> str:
    """The libpq URL of a SQLAlchemy PostgreSQL URL (``postgresql+psycopg://`` → ``postgresql://``)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeListener:
    """One ``LISTEN`` connection on its own thread; ``on_note`` gets each note, ``on_missed`` is told
    after a reconnect (notes may have gone by meanwhile). Both run on the listener's thread: keep them
    short."""

    def __init__(
        self,
        database_url: str,
        on_note: Callable[[ChangeNote], None],
        on_missed: Callable[[], None],
        *,
        poll_s: float = 0.5,
        retry_s: float = 1.0,
    ) -> None:
        self._conninfo = listen_url(database_url)
        self._on_note = on_note
        self._on_missed = on_missed
        self.poll_s = poll_s
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._listening = threading.Event()
        #: Notes handed on since the start (for tests and metrics).
        self.heard = 0

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    def wait_listening(self, timeout: float) -> bool:
        return self._listening.wait(timeout)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fleet-changes", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        import psycopg  # the PostgreSQL extra's driver; only a PostgreSQL fleet gets here

        first = True
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._conninfo,
                    autocommit=True,
                    connect_timeout=5,
                    # A server that vanished without closing the connection is noticed within seconds.
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=3,
                ) as conn:
                    conn.execute(f"LISTEN {CHANGE_CHANNEL}")
                    if not first:
                        log.info("listening to the database's change notes again")
                        self._on_missed()
                    # Only now: whoever trusts the notes while ``listening`` has heard of the gap first.
                    self._listening.set()
                    first = False
                    self._listen(conn)
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    log.warning("the database's change notes are not heard (%s); trying again", exc)
            finally:
                self._listening.clear()
            first = False
            self._stop.wait(self.retry_s)

    def _listen(self, conn: Any) -> None:
        while not self._stop.is_set():
            for notify in conn.notifies(timeout=self.poll_s):
                note = parse_note(notify.payload)
                if note is None:
                    continue
                self.heard += 1
                try:
                    self._on_note(note)
                except Exception:
                    log.exception("a change note could not be handled (%s)", notify.payload)
