"""On PostgreSQL an unchanged status is checked against the store again when, and only when, the
database's change notes name its printer: another process's edit is caught at the printer's next
status, and no printer is rechecked on a timer (at thousands of printers those checks filled the
ingest thread)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet import protocol as p
from fleet.app import FleetApp, build
from fleet.fleetlink import FleetLink
from fleet.server import heard_elsewhere, missed_elsewhere
from fleet.states import PrinterState as S
from fleet.store import BlobStore, Store, open_store
from fleet.store.changes import ChangeListener
from tests.brokers import wait_until
from tests.store.backends import PostgresServer
from tests.store.helpers import make_printer
from tests.store.test_spools import BLACK_PETG

from .conftest import T0, Clock, FakeLink, Node, add_printer

pytestmark = pytest.mark.postgres

N = p.NodeState


@pytest.fixture
def two_processes(pg_server: PostgresServer, tmp_path: Path) -> Iterator[tuple[str, FleetApp, Store, Clock]]:
    """This process's fleet (PostgreSQL) and another process's store on the same database."""
    url = pg_server.create_database()
    store = open_store(url, tmp_path / "data")
    other = open_store(url, tmp_path / "other")
    clock = Clock()
    yield url, build(store, BlobStore(tmp_path / "files"), clock=clock), other, clock
    other.close()
    store.close()
    pg_server.drop_database(url)


def checks(app: FleetApp) -> int:
    return app.metrics.counter("status.store_checks")


def test_another_process_s_edits_are_caught_at_the_next_status_and_nothing_is_rechecked_on_a_timer(
    two_processes: tuple[str, FleetApp, Store, Clock],
) -> None:
    url, app, other, clock = two_processes
    link = FakeLink()
    fleetlink = FleetLink(
        app, link, base_url="http://fleet", tick_interval_s=None, clock=clock, status_recheck_s=None
    )
    fleetlink.start()
    add_printer(app, "mk4", S.OFFLINE)
    node = Node(link, "mk4", clock)
    node.status(N.IDLE, material="PLA")
    assert app.printers.get_printer("mk4").state is S.IDLE
    # Days pass: an unchanged status is never checked against the store again, with no note.
    other.update_printer("mk4", state=S.OFFLINE)  # the listener is not on yet: nobody hears it
    for day in range(1, 4):
        clock.now = T0 + day * 86_400
        node.status(N.IDLE, material="PLA")
    assert checks(app) == 1
    assert app.printers.get_printer("mk4").state is S.OFFLINE

    listener = ChangeListener(
        url,
        lambda note: heard_elsewhere(app, fleetlink, note),
        lambda: missed_elsewhere(app, fleetlink),
        poll_s=0.05,
    )
    listener.start()
    try:
        assert listener.wait_listening(10)

        def next_status_puts_it_back(state: S) -> bool:
            node.status(N.IDLE, material="PLA")
            return app.printers.get_printer("mk4").state is state

        # With the listener on, the other process marks it idle, then offline again (a manager's
        # edits there): the notes name the printer, and its next status is checked in full.
        before = checks(app)
        other.update_printer("mk4", state=S.IDLE)
        other.update_printer("mk4", state=S.OFFLINE)
        wait_until(lambda: next_status_puts_it_back(S.IDLE), 10, "the edit is heard")
        assert checks(app) > before
        # A spool loaded there makes the printer's material the spool's (PETG); once it is unloaded,
        # the material the node reports (PLA) is taken again at its next status.
        spool = other.create_spool(BLACK_PETG, now=T0)
        other.load_spool(spool.id, "mk4", now=T0 + 1)
        before = checks(app)
        wait_until(
            lambda: next_status_puts_it_back(S.IDLE) and checks(app) > before, 10, "the spool is heard"
        )
        assert app.printers.get_printer("mk4").material == "PETG"
        other.unload_spool(spool.id, now=T0 + 2)
        wait_until(
            lambda: next_status_puts_it_back(S.IDLE) and app.printers.get_printer("mk4").material == "PLA",
            10,
            "the unloaded spool is heard",
        )
        # Quiet again: no note, no check, however many statuses. Notes come in commit order, so once
        # a later printer's is heard, those of the writes above have all been.
        heard = listener.heard
        other.create_printer(make_printer("sync"))
        wait_until(lambda: listener.heard > heard, 10, "the last note is heard")
        node.status(N.IDLE, material="PLA")  # this process hears its own writes too: checked once more
        settled = checks(app)
        for _ in range(50):
            node.status(N.IDLE, material="PLA")
        assert checks(app) == settled
    finally:
        listener.close()
        fleetlink.close()
