"""PostgreSQL's change notes: what another fleet process hears of each committed change, and nothing else."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from fleet.models import Role
from fleet.states import JobState
from fleet.store import Store, open_store
from fleet.store.changes import ChangeListener, ChangeNote, parse_note
from fleet.store.engine import write_transaction
from tests.store.backends import PostgresServer

from .helpers import T0, make_printer, submit
from .test_enrollment import CODE, enroll
from .test_spools import BLACK_PETG

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize(
    ("payload", "note"),
    [
        ("job 7 queued ", ChangeNote("job", "queued", (), 7)),
        ("job 7 assigned mk4", ChangeNote("job", "assigned", ("mk4",), 7)),
        ("job 7 queued  mk4", ChangeNote("job", "queued", ("mk4",), 7)),
        ("job 7 assigned mk3 mk4", ChangeNote("job", "assigned", ("mk3", "mk4"), 7)),
        ("printer mk4 idle", ChangeNote("printer", "idle", ("mk4",))),
        ("job seven queued ", None),
        ("printer  idle", None),
        ("member 3 added", None),
    ],
)
def test_notes_are_read_and_unknown_ones_ignored(payload: str, note: ChangeNote | None) -> None:
    assert parse_note(payload) == note


@pytest.fixture
def pg_store(pg_server: PostgresServer, tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """A fresh PostgreSQL database of its own (its triggers included), dropped after the test."""
    url = pg_server.create_database()
    store = open_store(url, tmp_path / "data")
    yield url, store
    store.close()
    pg_server.drop_database(url)


def test_each_committed_change_is_heard_by_a_listener_and_a_rolled_back_one_is_not(
    pg_store: tuple[str, Store],
) -> None:
    url, store = pg_store
    heard: queue.Queue[ChangeNote] = queue.Queue()
    missed: list[bool] = []
    listener = ChangeListener(url, heard.put, lambda: missed.append(True), poll_s=0.1)
    listener.start()
    try:
        assert listener.wait_listening(10)
        member = store.create_member("alice", Role.MEMBER, now=T0)
        store.create_printer(make_printer("mk4"))
        assert heard.get(timeout=5) == ChangeNote("printer", "idle", ("mk4",))
        (job,) = submit(store, member.id)
        assert heard.get(timeout=5) == ChangeNote("job", "queued", (), job.id)
        assert store.assign_job(job.id, "mk4", actor="system", now=T0 + 1)
        # One transaction, both rows: each named once, in the order written.
        got = {heard.get(timeout=5), heard.get(timeout=5)}
        assert got == {
            ChangeNote("job", "assigned", ("mk4",), job.id),
            ChangeNote("printer", "assigned", ("mk4",)),
        }
        # Only last_seen: the notes stay quiet (every printer's is written each half minute).
        store.touch_printers({"mk4": T0 + 2})
        # A transaction that rolls back announces nothing.
        with pytest.raises(RuntimeError), write_transaction(store.engine) as conn:
            conn.execute(text("UPDATE jobs SET priority = 5 WHERE id = :id"), {"id": job.id})
            raise RuntimeError("changed my mind")
        store.transition_job(job.id, JobState.CANCELLED, actor="manager:1", reason="test", now=T0 + 3)
        assert heard.get(timeout=5).state == "cancelled", "the next note is the cancel, nothing between"
        assert not missed
    finally:
        listener.close()


def test_a_listener_that_lost_its_connection_listens_again_and_says_it_missed_notes(
    pg_store: tuple[str, Store],
) -> None:
    url, store = pg_store
    heard: queue.Queue[ChangeNote] = queue.Queue()
    missed: queue.Queue[bool] = queue.Queue()
    listener = ChangeListener(url, heard.put, lambda: missed.put(True), poll_s=0.1, retry_s=0.1)
    listener.start()
    try:
        assert listener.wait_listening(10)
        with store.engine.connect() as conn:  # what a database restart does to the listener
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            )
            conn.commit()
        assert missed.get(timeout=10)
        store.create_printer(make_printer("mk4"))
        assert heard.get(timeout=5) == ChangeNote("printer", "idle", ("mk4",))
    finally:
        listener.close()


def test_a_printers_credentials_and_the_spool_on_it_are_announced_as_notes_of_the_printer(
    pg_store: tuple[str, Store],
) -> None:
    """What a status is checked against includes the printer's credentials (revoked: its messages are
    refused) and its spool (loaded: the node's material is not taken), so their changes are notes too."""
    url, store = pg_store
    heard: queue.Queue[ChangeNote] = queue.Queue()
    listener = ChangeListener(url, heard.put, lambda: None, poll_s=0.1)
    listener.start()
    try:
        assert listener.wait_listening(10)
        store.add_enrollment_code(CODE, created_by=None, now=T0, expires_at=T0 + 60)
        enroll(store, "mini")
        notes = drain(heard)
        assert ChangeNote("printer", "idle", ("mini",)) in notes, notes
        assert store.revoke_credentials("mini", now=T0 + 20)
        assert heard.get(timeout=5) == ChangeNote("printer", "idle", ("mini",))

        store.create_printer(make_printer("mk4", material="PLA"))
        assert heard.get(timeout=5) == ChangeNote("printer", "idle", ("mk4",))
        spool = store.create_spool(BLACK_PETG, now=T0)  # on its shelf: no printer to name
        store.load_spool(spool.id, "mk4", now=T0 + 1)
        # The spool's note and the printer's (its material): the same words in one transaction,
        # which PostgreSQL delivers once.
        assert drain(heard) == [ChangeNote("printer", "idle", ("mk4",))]
        store.unload_spool(spool.id, now=T0 + 2)
        assert drain(heard, at_least=1)[0] == ChangeNote("printer", "idle", ("mk4",))
        store.update_spool(spool.id, {"remaining_grams": 300.0}, now=T0 + 3)  # on its shelf: no printer
        store.create_printer(make_printer("mk3"))
        assert heard.get(timeout=5) == ChangeNote("printer", "idle", ("mk3",)), "nothing between"
    finally:
        listener.close()


def drain(heard: queue.Queue[ChangeNote], *, at_least: int = 1, settle_s: float = 0.5) -> list[ChangeNote]:
    """The notes heard: at least ``at_least`` (each within 5 s), then any that follow within ``settle_s``."""
    notes = [heard.get(timeout=5) for _ in range(at_least)]
    while True:
        try:
            notes.append(heard.get(timeout=settle_s))
        except queue.Empty:
            return notes
