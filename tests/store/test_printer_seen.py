"""The status path's writes and reads: last-seen times for many printers at once, a printer with its
credentials in one read."""

from __future__ import annotations

import pytest

from fleet.auth import hash_token
from fleet.errors import NotFound
from fleet.store import Store

from .helpers import T0, make_printer


def test_touch_sets_last_seen_for_many_printers_in_one_call(store: Store) -> None:
    for printer_id in ("a", "b", "c"):
        store.create_printer(make_printer(printer_id, last_seen=T0 if printer_id == "c" else None))
    store.touch_printers({"a": T0 + 5, "b": T0 + 6, "gone": T0 + 7})
    assert [store.get_printer(p).last_seen for p in ("a", "b", "c")] == [T0 + 5, T0 + 6, T0]


def test_touch_never_moves_last_seen_back(store: Store) -> None:
    store.create_printer(make_printer("a", last_seen=T0 + 10))
    store.touch_printers({"a": T0 + 3})
    assert store.get_printer("a").last_seen == T0 + 10
    store.touch_printers({})
    assert store.get_printer("a").last_seen == T0 + 10


def test_printer_and_revoked_reads_both(store: Store) -> None:
    store.create_printer(make_printer("plain"))
    assert store.printer_and_revoked("plain")[1] is False
    code = hash_token("CODE")
    store.add_enrollment_code(code, created_by=None, now=T0, expires_at=T0 + 60)
    enrolled = store.enroll_printer(
        code,
        make_printer("mini"),
        mqtt_password_hash="$7$101$c2FsdA==$aGFzaA==",
        http_token_hash=hash_token("t"),
        now=T0 + 1,
    )
    assert enrolled is not None
    printer, revoked = store.printer_and_revoked("mini")
    assert (printer.id, revoked) == ("mini", False)
    store.revoke_credentials("mini", now=T0 + 2)
    assert store.printer_and_revoked("mini")[1] is True
    with pytest.raises(NotFound, match="nope"):
        store.printer_and_revoked("nope")
