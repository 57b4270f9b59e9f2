"""Failed attempts (the sign-in, enrollment code and token limits) in the store, and migration 4 → 5."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from fleet.store import Store, open_store
from fleet.store.db import attempt_key
from fleet.store.migrations import current_version, migrate
from fleet.store.schema import ATTEMPT_KEY_CHARS, SCHEMA_VERSION, failed_attempts

from .helpers import T0, create_version_with_alice, race
from .test_enrollment import assert_same_as_fresh


def stored_keys(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(conn.execute(select(failed_attempts.c.key)).scalars())


def test_the_latest_failures_after_a_moment_come_back_oldest_first(store: Store) -> None:
    for at in (T0, T0 + 1, T0 + 2, T0 + 3):
        store.add_failed_attempt("signin", "k", now=at)

    assert store.recent_failed_attempts("signin", "k", since=T0 - 1, limit=10) == [T0, T0 + 1, T0 + 2, T0 + 3]
    # The latest ``limit`` of them, still oldest first: the first is the one that ages out next.
    assert store.recent_failed_attempts("signin", "k", since=T0 - 1, limit=2) == [T0 + 2, T0 + 3]
    # Strictly later than ``since``: a failure exactly a window ago no longer counts.
    assert store.recent_failed_attempts("signin", "k", since=T0 + 1, limit=10) == [T0 + 2, T0 + 3]
    assert store.recent_failed_attempts("signin", "k", since=T0 + 3, limit=10) == []
    assert store.recent_failed_attempts("signin", "unknown", since=T0 - 1, limit=10) == []


def test_scopes_and_keys_are_counted_apart(store: Store) -> None:
    store.add_failed_attempt("signin", "k", now=T0)
    store.add_failed_attempt("token", "k", now=T0 + 1)
    store.add_failed_attempt("signin", "other", now=T0 + 2)

    assert store.recent_failed_attempts("signin", "k", since=0, limit=10) == [T0]
    assert store.recent_failed_attempts("token", "k", since=0, limit=10) == [T0 + 1]
    assert store.recent_failed_attempts("signin", "other", since=0, limit=10) == [T0 + 2]
    assert store.recent_failed_attempts("enroll", "k", since=0, limit=10) == []


def test_clearing_a_key_forgets_only_that_key_in_that_scope(store: Store) -> None:
    for at in (T0, T0 + 1):
        store.add_failed_attempt("signin", "k", now=at)
    store.add_failed_attempt("token", "k", now=T0)
    store.add_failed_attempt("signin", "other", now=T0)

    assert store.clear_failed_attempts("signin", "k") == 2
    assert store.clear_failed_attempts("signin", "k") == 0

    assert store.recent_failed_attempts("signin", "k", since=0, limit=10) == []
    assert store.recent_failed_attempts("token", "k", since=0, limit=10) == [T0]
    assert store.recent_failed_attempts("signin", "other", since=0, limit=10) == [T0]


def test_pruning_forgets_the_scopes_failures_older_than_the_cutoff(store: Store) -> None:
    for at in (T0, T0 + 10, T0 + 20):
        store.add_failed_attempt("signin", "a", now=at)
        store.add_failed_attempt("signin", "b", now=at)
    store.add_failed_attempt("token", "a", now=T0)

    assert store.prune_failed_attempts("signin", before=T0 + 10) == 2  # T0 of a and of b; T0 + 10 stays

    assert store.recent_failed_attempts("signin", "a", since=0, limit=10) == [T0 + 10, T0 + 20]
    assert store.recent_failed_attempts("signin", "b", since=0, limit=10) == [T0 + 10, T0 + 20]
    assert store.recent_failed_attempts("token", "a", since=0, limit=10) == [T0], "another scope was pruned"
    assert store.prune_failed_attempts("signin", before=T0 + 10) == 0


def test_long_or_unprintable_keys_are_stored_as_their_hash(store: Store) -> None:
    long_key = "x" * 10_000
    almost = "x" * 9_999 + "y"
    exact = "z" * ATTEMPT_KEY_CHARS
    with_nul = "name\x00"  # PostgreSQL refuses NUL in text: hashed, it is stored like any other key
    for key in (long_key, almost, exact, with_nul):
        store.add_failed_attempt("signin", key, now=T0)
    store.add_failed_attempt("signin", long_key, now=T0 + 1)

    digest = hashlib.sha256(long_key.encode()).hexdigest()
    assert f"sha256:{digest}" in stored_keys(store)
    assert exact in stored_keys(store), "a key of the longest length kept as it is was hashed"
    assert max(len(key) for key in stored_keys(store)) == len("sha256:") + 64
    assert store.recent_failed_attempts("signin", long_key, since=0, limit=10) == [T0, T0 + 1]
    assert store.recent_failed_attempts("signin", almost, since=0, limit=10) == [T0]
    assert store.recent_failed_attempts("signin", with_nul, since=0, limit=10) == [T0]
    assert store.clear_failed_attempts("signin", long_key) == 2
    assert store.recent_failed_attempts("signin", almost, since=0, limit=10) == [T0]


def test_a_hashed_key_never_equals_a_key_kept_as_it_is() -> None:
    long_key = "k" * (ATTEMPT_KEY_CHARS + 1)
    hashed = attempt_key(long_key)
    assert len(hashed) > ATTEMPT_KEY_CHARS
    assert attempt_key(hashed) != hashed  # a client sending the hashed text gets that text hashed again
    assert attempt_key("127.0.0.1") == "127.0.0.1"


def test_a_scope_must_be_named_and_short(store: Store) -> None:
    with pytest.raises(ValueError, match="scope"):
        store.add_failed_attempt("", "k", now=T0)
    with pytest.raises(ValueError, match="scope"):
        store.recent_failed_attempts("s" * 33, "k", since=0, limit=1)


def test_failures_recorded_at_once_are_all_counted(store: Store) -> None:
    race(8, lambda i: store.add_failed_attempt("token", "10.0.0.1", now=T0 + i))

    assert store.recent_failed_attempts("token", "10.0.0.1", since=0, limit=100) == [T0 + i for i in range(8)]


def test_a_version_4_database_gains_failed_attempts_and_keeps_its_members(
    engine: Engine, fresh_url: str, data_dir: Path, request: pytest.FixtureRequest
) -> None:
    create_version_with_alice(engine, 4)  # every table of today's but failed_attempts

    assert migrate(engine) == SCHEMA_VERSION == 6  # through 5, to the latest

    with engine.connect() as conn:
        assert current_version(conn) == 6
        assert conn.execute(select(func.count()).select_from(failed_attempts)).scalar_one() == 0
    assert_same_as_fresh(engine, fresh_url, request)
    store = open_store(fresh_url, data_dir)
    try:
        assert [m.name for m in store.list_members()] == ["alice"]
        store.add_failed_attempt("signin", "k", now=T0)
        assert store.recent_failed_attempts("signin", "k", since=0, limit=5) == [T0]
    finally:
        store.close()
