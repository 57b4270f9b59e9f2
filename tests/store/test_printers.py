"""Printers, grants and settings."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.errors import Conflict, NotFound
from fleet.geometry import Box
from fleet.models import Member, Role
from fleet.states import JobState, PrinterState
from fleet.store import Store

from .helpers import T0, make_printer, submit


def test_create_and_read_back(store: Store) -> None:
    printer = make_printer("mini-1", volume=Box(-5, -5, 0, 180, 180, 180), material=None, restricted=True)

    assert store.create_printer(printer) == printer
    assert store.get_printer("mini-1") == printer
    assert store.printer_capabilities("mini-1") == {}


def test_list_in_id_order(store: Store) -> None:
    for printer_id in ["mk4-2", "mk4-1", "mini-1"]:
        store.create_printer(make_printer(printer_id))

    assert [printer.id for printer in store.list_printers()] == ["mini-1", "mk4-1", "mk4-2"]


def test_duplicate_id_is_a_conflict(store: Store) -> None:
    store.create_printer(make_printer("mini-1"))

    with pytest.raises(Conflict, match="'mini-1' already exists"):
        store.create_printer(make_printer("mini-1", name="another"))
    assert store.get_printer("mini-1").name == "Printer mini-1"


def test_missing_printer(store: Store) -> None:
    with pytest.raises(NotFound, match="no printer with id 'ghost'"):
        store.get_printer("ghost")
    with pytest.raises(NotFound, match="no printer with id 'ghost'"):
        store.update_printer("ghost", name="x")


def test_update_changes_only_what_is_given(store: Store) -> None:
    store.create_printer(make_printer("mini-1"), capabilities={"firmware": "Marlin 2.1"})

    changes: dict[str, Any] = {
        "state": PrinterState.MAINTENANCE,
        "volume": Box.of_size(180, 180, 180),
        "nozzle_diameter": 0.6,
        "material": "PETG",
        "restricted": True,
        "last_seen": T0 + 5,
    }
    updated = store.update_printer(
        "mini-1", **changes, capabilities={"firmware": "Marlin 2.1.2", "mbl": True}
    )

    assert updated == make_printer("mini-1", **changes)
    assert store.get_printer("mini-1") == updated
    assert store.printer_capabilities("mini-1") == {"firmware": "Marlin 2.1.2", "mbl": True}


def test_update_refuses_unknown_fields(store: Store) -> None:
    store.create_printer(make_printer("mini-1"))

    with pytest.raises(TypeError, match="cannot change created_at, id"):
        store.update_printer("mini-1", id="other", created_at=0.0)


def test_release_clears_the_current_job(store: Store) -> None:
    store.create_printer(make_printer("mini-1", state=PrinterState.PRINTING, current_job_id=7))

    with pytest.raises(Conflict, match="holds job 7, not job 8"):
        store.release_printer("mini-1", PrinterState.IDLE, expect_job_id=8)

    released = store.release_printer("mini-1", PrinterState.AWAITING_BED_CLEAR, expect_job_id=7)
    assert (released.state, released.current_job_id) == (PrinterState.AWAITING_BED_CLEAR, None)


def test_grants(store: Store, member: Member) -> None:
    bob = store.create_member("bob", Role.MEMBER, now=T0)
    for printer_id in ["mini-1", "mk4-1"]:
        store.create_printer(make_printer(printer_id, restricted=True))

    store.grant(member.id, "mini-1")
    store.grant(member.id, "mini-1")  # twice is harmless
    store.grant(member.id, "mk4-1")
    store.grant(bob.id, "mk4-1")

    assert store.grants() == {member.id: frozenset({"mini-1", "mk4-1"}), bob.id: frozenset({"mk4-1"})}
    assert store.grants_for(member.id) == frozenset({"mini-1", "mk4-1"})

    assert store.revoke_grant(member.id, "mk4-1") is True
    assert store.revoke_grant(member.id, "mk4-1") is False
    assert store.grants_for(member.id) == frozenset({"mini-1"})
    assert store.grants_for(999) == frozenset()


def test_grant_needs_a_real_member_and_printer(store: Store, member: Member) -> None:
    store.create_printer(make_printer("mini-1"))

    with pytest.raises(NotFound, match="member"):
        store.grant(999, "mini-1")
    with pytest.raises(NotFound, match="printer"):
        store.grant(member.id, "ghost")
    assert store.grants() == {}


def test_settings_round_trip_as_json(store: Store) -> None:
    assert store.get_setting("approval") is None
    assert store.get_setting("approval", default={"required": False}) == {"required": False}

    store.set_setting("approval", {"required": True, "managers": [1, 2]})
    store.set_setting("max_upload_mib", 50)
    assert store.get_setting("approval") == {"required": True, "managers": [1, 2]}

    store.set_setting("approval", {"required": False})
    assert store.get_setting("approval") == {"required": False}
    assert store.get_setting("max_upload_mib") == 50


def test_a_state_the_table_forbids_is_refused_and_nothing_changes(store: Store) -> None:
    store.create_printer(make_printer("mini-1", state=PrinterState.MAINTENANCE))

    with pytest.raises(Conflict, match="maintenance cannot become printing"):
        store.update_printer("mini-1", state=PrinterState.PRINTING, material="PETG")
    assert store.get_printer("mini-1") == make_printer("mini-1", state=PrinterState.MAINTENANCE)
    with pytest.raises(Conflict, match="maintenance cannot become awaiting_bed_clear"):
        store.release_printer("mini-1", PrinterState.AWAITING_BED_CLEAR)
    assert store.update_printer("mini-1", state=PrinterState.IDLE).state is PrinterState.IDLE


def test_update_with_expect_moves_only_from_those_states(store: Store) -> None:
    store.create_printer(make_printer("mini-1", state=PrinterState.PRINTING))

    with pytest.raises(Conflict, match="mini-1 is printing, expected awaiting_bed_clear"):
        store.update_printer("mini-1", expect={PrinterState.AWAITING_BED_CLEAR}, state=PrinterState.IDLE)
    assert store.get_printer("mini-1").state is PrinterState.PRINTING


def test_a_job_move_whose_printer_move_is_forbidden_changes_neither(store: Store, member: Member) -> None:
    store.create_printer(make_printer("mini-1"))
    [job] = submit(store, member.id)
    assert store.assign_job(job.id, "mini-1", actor="scheduler", now=T0)
    store.update_printer("mini-1", state=PrinterState.AWAITING_BED_CLEAR)

    with pytest.raises(Conflict, match="awaiting_bed_clear cannot become assigned"):
        store.transition_job(
            job.id,
            JobState.PRINTING,
            actor="printer:mini-1",
            reason="",
            now=T0 + 1,
            printer_changes=lambda printer: {"state": PrinterState.ASSIGNED},
        )
    assert store.get_job(job.id).state is JobState.ASSIGNED
    assert store.get_printer("mini-1").state is PrinterState.AWAITING_BED_CLEAR
