"""Link codes in the store (spent once, until they expire; one waiting per member; why one is refused),
and migrations 5 → 6 and 8 → 9."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from fleet.models import CodeRefusal, Role
from fleet.store import Store, open_store
from fleet.store.members import SPENT_CODES_KEPT_S
from fleet.store.migrations import current_version, migrate
from fleet.store.schema import SCHEMA_VERSION

from .helpers import T0, create_version_with_alice, race
from .test_enrollment import assert_same_as_fresh


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def test_a_code_is_spent_once_and_only_before_it_expires(store: Store) -> None:
    ada = store.create_member("ada", Role.MEMBER, now=T0)
    store.add_link_code(ada.id, code_hash("one"), now=T0, expires_at=T0 + 600)
    assert store.spend_link_code(code_hash("one"), now=T0 + 600) is None  # expired at that instant
    assert store.link_code_refusal(code_hash("one"), now=T0 + 600) is CodeRefusal.EXPIRED
    store.add_link_code(ada.id, code_hash("two"), now=T0, expires_at=T0 + 600)
    found = store.spend_link_code(code_hash("two"), now=T0 + 1)
    assert found is not None and found.id == ada.id
    assert store.spend_link_code(code_hash("two"), now=T0 + 2) is None
    # Each refusal says why: already used, or not known at all (the newer code withdrew "one").
    assert store.link_code_refusal(code_hash("one"), now=T0 + 2) is CodeRefusal.UNKNOWN
    assert store.link_code_refusal(code_hash("two"), now=T0 + 2) is CodeRefusal.USED
    assert store.link_code_refusal(code_hash("never"), now=T0 + 2) is CodeRefusal.UNKNOWN
    # A day after they expire, spent and expired codes are forgotten.
    store.spend_link_code(code_hash("other"), now=T0 + 600 + SPENT_CODES_KEPT_S)
    assert store.link_code_refusal(code_hash("two"), now=T0 + 2) is CodeRefusal.UNKNOWN


def test_a_new_code_withdraws_the_members_older_one_and_a_deactivated_member_gets_none(store: Store) -> None:
    ada = store.create_member("ada", Role.MEMBER, now=T0)
    store.add_link_code(ada.id, code_hash("old"), now=T0, expires_at=T0 + 600)
    store.add_link_code(ada.id, code_hash("new"), now=T0, expires_at=T0 + 600)
    assert store.spend_link_code(code_hash("old"), now=T0 + 1) is None
    store.update_member(ada.id, active=False)
    assert store.spend_link_code(code_hash("new"), now=T0 + 1) is None


def test_racing_requests_spend_a_code_once(store: Store) -> None:
    ada = store.create_member("ada", Role.MEMBER, now=T0)
    store.add_link_code(ada.id, code_hash("race"), now=T0, expires_at=T0 + 600)
    spent = race(4, lambda _: store.spend_link_code(code_hash("race"), now=T0 + 1))
    assert sum(found is not None for found in spent) == 1


def test_a_version_5_database_gains_link_codes_and_keeps_its_members(
    engine: Engine, fresh_url: str, data_dir: Path, request: pytest.FixtureRequest
) -> None:
    create_version_with_alice(engine, 5)

    assert migrate(engine) == SCHEMA_VERSION >= 6
    with engine.connect() as conn:
        assert current_version(conn) == SCHEMA_VERSION
    assert_same_as_fresh(engine, fresh_url, request)
    store = open_store(fresh_url, data_dir)
    try:
        alice = store.get_member_by_name("alice")
        store.add_link_code(alice.id, code_hash("c"), now=T0, expires_at=T0 + 60)
        assert store.spend_link_code(code_hash("c"), now=T0 + 1) == alice
    finally:
        store.close()


def test_a_version_8_database_tells_device_sign_ins_from_the_members_own_token(
    engine: Engine, fresh_url: str, data_dir: Path, request: pytest.FixtureRequest
) -> None:
    """8 → 9: the tokens that a device signed in for (any label but initial or reissued) are marked so,
    and a rotation of the member's own token leaves them be."""
    create_version_with_alice(engine, 8)
    with engine.begin() as conn:
        alice = conn.execute(text("SELECT id FROM members WHERE name = 'alice'")).scalar_one()
        for label in ("initial", "OctoPrint user ada on printer mini-1"):
            conn.execute(
                text(
                    "INSERT INTO api_tokens (token_hash, member_id, label, created_at) "
                    "VALUES (:h, :m, :l, :t)"
                ),
                {"h": code_hash(label), "m": alice, "l": label, "t": T0},
            )
    assert migrate(engine) == SCHEMA_VERSION >= 9
    assert_same_as_fresh(engine, fresh_url, request)
    store = open_store(fresh_url, data_dir)
    try:
        tokens = {t.label: t.device for t in store.list_tokens(alice)}
        assert tokens == {"initial": False, "OctoPrint user ada on printer mini-1": True}
        assert store.revoke_tokens(alice, devices=False) == 1
        assert [t.label for t in store.list_tokens(alice)] == ["OctoPrint user ada on printer mini-1"]
    finally:
        store.close()
