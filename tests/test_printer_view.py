"""The printers a scheduling pass plans over, kept in memory while PostgreSQL's notes are heard: read
again where a change is named, all of them when the notes may have been missed, and from the store
every time when no notes are heard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from fleet.app import FleetApp, build
from fleet.app.base import Change, ChangeKind
from fleet.app.printer_view import PrinterView
from fleet.models import Role
from fleet.server import heard_elsewhere, missed_elsewhere
from fleet.states import PrinterState as S
from fleet.store import BlobStore, Store, open_store
from fleet.store.changes import ChangeListener
from fleet.store.engine import write_transaction
from tests.brokers import wait_until
from tests.fleetlink.conftest import FakeLink
from tests.store.backends import PostgresServer
from tests.store.helpers import T0, make_printer, submit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(None, tmp_path / "data")
    yield opened
    opened.close()


def states(view: PrinterView) -> dict[str, S]:
    return {p.id: p.state for p in view.printers()}


def test_only_the_printers_named_are_read_again(store: Store) -> None:
    for name in ("mk3", "mk4", "mini"):
        store.create_printer(make_printer(name))
    view = PrinterView(store, trusted=lambda: True)
    assert states(view) == {"mini": S.IDLE, "mk3": S.IDLE, "mk4": S.IDLE}
    assert (view.full_reads, view.partial_reads) == (1, 0)

    store.update_printer("mk4", state=S.MAINTENANCE)
    store.update_printer("mk3", state=S.MAINTENANCE)
    view.changed(Change(ChangeKind.PRINTER, "mk4"))
    view.changed(Change(ChangeKind.LIVE, "mk3"))  # a live view is not the record: nothing to read
    assert states(view) == {"mini": S.IDLE, "mk3": S.IDLE, "mk4": S.MAINTENANCE}
    assert (view.full_reads, view.partial_reads) == (1, 1)
    assert states(view) == {"mini": S.IDLE, "mk3": S.IDLE, "mk4": S.MAINTENANCE}, "nothing named: as it was"
    assert view.partial_reads == 1

    with write_transaction(store.engine) as conn:  # no API removes a printer; the view copes anyway
        conn.execute(text("DELETE FROM printers WHERE id = 'mini'"))
    store.create_printer(make_printer("xl"))
    view.changed(Change(ChangeKind.PRINTER, "mini"))
    view.changed(Change(ChangeKind.PRINTER, "xl"))
    assert list(states(view)) == ["mk3", "mk4", "xl"], "removed and added, in id order"

    view.changed(Change(ChangeKind.EVERYTHING))  # notes may have been missed
    assert states(view)["mk3"] is S.MAINTENANCE
    assert view.full_reads == 2


def test_two_refreshes_at_once_keep_what_each_read(store: Store) -> None:
    """A pass and a queue page may refresh together: the later one must not put back the printers
    the earlier one has just read past."""
    import threading

    for name in ("mk3", "mk4"):
        store.create_printer(make_printer(name))
    view = PrinterView(store, trusted=lambda: True)
    states(view)
    read, first_inside, go = store.printers_with_ids, threading.Event(), threading.Event()

    def slow_first_read(ids):
        if not first_inside.is_set():
            first_inside.set()
            go.wait(10)
        return read(ids)

    store.printers_with_ids = slow_first_read  # type: ignore[method-assign]
    store.update_printer("mk4", state=S.MAINTENANCE)
    view.changed(Change(ChangeKind.PRINTER, "mk4"))
    first = threading.Thread(target=view.printers)
    first.start()
    assert first_inside.wait(5)
    store.update_printer("mk3", state=S.MAINTENANCE)
    view.changed(Change(ChangeKind.PRINTER, "mk3"))
    second = threading.Thread(target=view.printers)
    second.start()
    second.join(1)  # done at once, or waiting for the first: either way the first goes on now
    go.set()
    first.join(5)
    second.join(5)
    assert states(view) == {"mk3": S.MAINTENANCE, "mk4": S.MAINTENANCE}


def test_without_notes_heard_every_pass_reads_the_store(store: Store) -> None:
    store.create_printer(make_printer("mk4"))
    listening = False
    view = PrinterView(store, trusted=lambda: listening)
    assert states(view) == {"mk4": S.IDLE}
    store.update_printer("mk4", state=S.MAINTENANCE)  # unannounced (the command line on SQLite)
    assert states(view) == {"mk4": S.MAINTENANCE}
    listening = True
    store.update_printer("mk4", state=S.IDLE)
    assert states(view) == {"mk4": S.IDLE}, "the first pass trusted reads everything"
    assert view.full_reads == 3


@pytest.mark.postgres
def test_a_pass_sees_what_another_process_changed_once_its_note_is_heard(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    from fleet.fleetlink import FleetLink

    url = pg_server.create_database()
    mine, other = open_store(url, tmp_path / "data"), open_store(url, tmp_path / "other")
    app: FleetApp = build(mine, BlobStore(tmp_path / "files"))
    link = FleetLink(app, FakeLink(), base_url="http://fleet", tick_interval_s=None)
    listener = ChangeListener(
        url, lambda note: heard_elsewhere(app, link, note), lambda: missed_elsewhere(app, link), poll_s=0.05
    )
    view = PrinterView(mine, trusted=lambda: listener.listening)
    app.hooks.on_change(view.changed)
    app.dispatcher.list_printers = view.printers
    listener.start()
    try:
        assert listener.wait_listening(10)
        other.create_printer(make_printer("mk4", state=S.MAINTENANCE))
        wait_until(lambda: "mk4" in states(view), 10, "the new printer is heard")
        member = other.create_member("alice", Role.MEMBER, now=T0)
        [job] = submit(other, member.id)
        assert app.dispatcher.dispatch_pass() == [], "in maintenance: nothing to give it"
        reads = view.full_reads
        other.update_printer("mk4", state=S.IDLE)  # a manager's edit on the other process
        wait_until(lambda: states(view)["mk4"] is S.IDLE, 10, "the edit is heard")
        assert app.dispatcher.dispatch_pass() == [(job.id, "mk4")]
        assert view.full_reads == reads, "the edit was read alone, not with every printer"
    finally:
        listener.close()
        other.close()
        mine.close()
        pg_server.drop_database(url)
