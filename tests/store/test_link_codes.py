"""Link codes in the store (spent once, until they expire; one waiting per member), and migration 5 → 6."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from fleet.models import Role
from fleet.store import Store, open_store
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
    store.add_link_code(ada.id, code_hash("two"), now=T0, expires_at=T0 + 600)
    found = store.spend_link_code(code_hash("two"), now=T0 + 1)
    assert found is not None and found.id == ada.id
    assert store.spend_link_code(code_hash("two"), now=T0 + 2) is None


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
