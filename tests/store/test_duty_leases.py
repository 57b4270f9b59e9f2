"""Leases of the once-only duties (SQLite and PostgreSQL), the Duties that claim them, and migration 8 → 9."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from fleet.duties import Duties
from fleet.store import Store
from fleet.store.leases import Lease
from fleet.store.schema import duty_leases

from .helpers import T0, race
from .test_enrollment import assert_upgrade_keeps_alice


def test_a_lease_is_held_renewed_then_taken_over_only_once_it_runs_out(store: Store) -> None:
    assert store.claim_duties(["dispatch", "sweeps"], "a", now=T0, ttl_s=5) == {"dispatch", "sweeps"}
    assert store.claim_duties(["dispatch", "sweeps"], "b", now=T0 + 1, ttl_s=5) == set()
    # A renewal moves the expiry on and keeps when the holding began.
    assert store.claim_duties(["dispatch"], "a", now=T0 + 4, ttl_s=5) == {"dispatch"}
    assert store.claim_duties(["dispatch", "sweeps"], "b", now=T0 + 6, ttl_s=5) == {"sweeps"}
    assert store.duty_leases() == [
        Lease("dispatch", "a", T0 + 9, T0),
        Lease("sweeps", "b", T0 + 11, T0 + 6),
    ]
    # "a" stopped renewing: "b" takes the dispatch over at its expiry, not before.
    assert store.claim_duties(["dispatch"], "b", now=T0 + 8.9, ttl_s=5) == set()
    assert store.claim_duties(["dispatch"], "b", now=T0 + 9, ttl_s=5) == {"dispatch"}
    assert store.claim_duties(["dispatch"], "a", now=T0 + 10, ttl_s=5) == set()


def test_a_released_lease_passes_on_at_once_and_force_takes_any(store: Store) -> None:
    store.claim_duties(["dispatch"], "a", now=T0, ttl_s=5)
    assert not store.release_duty("dispatch", "b"), "only its holder gives a duty back"
    assert store.release_duty("dispatch", "a")
    assert store.claim_duties(["dispatch"], "b", now=T0 + 1, ttl_s=5) == {"dispatch"}
    assert store.claim_duties(["dispatch"], "c", now=T0 + 2, ttl_s=5, force=True) == {"dispatch"}
    assert [lease.holder for lease in store.duty_leases()] == ["c"]


def test_processes_claiming_together_never_both_win(store: Store) -> None:
    for round_ in range(5):
        now = T0 + 100 * round_  # every earlier lease has run out
        won = race(6, lambda i, now=now: store.claim_duties(["dispatch"], f"p{i}", now=now, ttl_s=5))
        assert sum(len(w) for w in won) == 1, won


def test_duties_hand_over_when_their_holder_stops_renewing(store: Store) -> None:
    clock = [T0]
    gained: list[str] = []
    first = Duties(store, "first", ttl_s=5, renew_s=1, margin_s=1, clock=lambda: clock[0])
    second = Duties(store, "second", ttl_s=5, renew_s=1, margin_s=1, clock=lambda: clock[0])
    first.add("dispatch", on_gain=lambda: gained.append("first"), on_loss=lambda: gained.append("first lost"))
    second.add("dispatch", on_gain=lambda: gained.append("second"))
    first.claim()
    second.claim()
    assert (first.holds("dispatch"), second.holds("dispatch")) == (True, False)
    assert first.held() == ["dispatch"] and second.held() == []
    # The first process hangs (no renewals): it stops acting a margin before anyone may take over.
    clock[0] = T0 + 4
    assert not first.holds("dispatch")
    second.claim()
    assert not second.holds("dispatch"), "the lease has not run out yet"
    clock[0] = T0 + 5
    second.claim()
    assert second.holds("dispatch")
    first.claim()
    assert not first.holds("dispatch")
    assert gained == ["first", "second", "first lost"]


def test_a_clean_stop_gives_duties_back_and_every_runs_only_while_held(store: Store) -> None:
    ran = threading.Event()
    first = Duties(store, "first", ttl_s=5, renew_s=1)
    first.every("sweeps", 3600, ran.set)
    first.start()
    try:
        assert ran.wait(5), "the holder runs its periodic duty at once"
        assert first.holds("sweeps")
    finally:
        first.close()
    assert store.duty_leases() == [], "given back"
    idle = threading.Event()
    second = Duties(store, "second", ttl_s=5, renew_s=1)
    third = Duties(store, "third", ttl_s=5, renew_s=1)
    second.add("sweeps")
    second.claim()
    third.every("sweeps", 0.05, idle.set)
    third.start()
    try:
        assert not idle.wait(0.5), "a process that does not hold the duty never runs it"
    finally:
        third.close()
        second.close()


def test_a_version_8_database_gains_duty_leases_and_keeps_its_members(
    engine: Engine, fresh_url: str, data_dir: Path, request: pytest.FixtureRequest
) -> None:
    assert_upgrade_keeps_alice(engine, fresh_url, data_dir, request, from_version=8, new_table=duty_leases)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            triggers = conn.execute(
                text("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'crowdfab_note_%' ORDER BY tgname")
            ).scalars()
            # Version 9 added the notes of jobs and printers; version 14 those of credentials and spools.
            assert list(triggers) == [
                "crowdfab_note_credentials",
                "crowdfab_note_job",
                "crowdfab_note_printer",
                "crowdfab_note_spool",
            ]


class Unreachable:
    """A store whose database stopped answering after the first claim."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.down = False

    def claim_duties(self, names, holder, *, now, ttl_s, force=False):  # type: ignore[no-untyped-def]
        if self.down:
            raise ConnectionError("the database does not answer")
        return self.store.claim_duties(names, holder, now=now, ttl_s=ttl_s, force=force)

    def release_duty(self, name: str, holder: str) -> bool:
        return self.store.release_duty(name, holder)


def test_a_holder_cut_off_from_the_database_stops_before_its_lease_can_pass(store: Store) -> None:
    clock = [T0]
    cut_off = Unreachable(store)
    lost: list[float] = []
    duties = Duties(cut_off, "first", ttl_s=5, renew_s=1, margin_s=1, clock=lambda: clock[0])
    duties.add("dispatch", on_loss=lambda: lost.append(clock[0]))
    duties.claim()
    cut_off.down = True
    clock[0] = T0 + 2
    duties.claim()  # fails: what is held stays held, until its own deadline
    assert duties.holds("dispatch") and not lost
    clock[0] = T0 + 4
    duties.claim()
    assert not duties.holds("dispatch") and lost == [T0 + 4]
    # Only now, a second later, may another process take it.
    assert store.claim_duties(["dispatch"], "second", now=T0 + 4.5, ttl_s=5) == set()
    assert store.claim_duties(["dispatch"], "second", now=T0 + 5, ttl_s=5) == {"dispatch"}
