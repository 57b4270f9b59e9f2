"""Idempotency keys of submissions: one set of jobs per member's key, recorded with the jobs, expiring."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from fleet.errors import Invalid
from fleet.models import Role
from fleet.store import Store, SubmissionKey
from fleet.store.migrations import current_version, migrate
from fleet.store.schema import SCHEMA_VERSION, jobs, submission_keys

from .helpers import SHA_B, T0, create_version_with_alice, race, submit
from .test_enrollment import assert_same_as_fresh

DAY = 24 * 3600.0


def claim(key: str = "k-1", request_hash: str = "1" * 64, now: float = T0) -> SubmissionKey:
    return SubmissionKey(key, request_hash, valid_after=now - DAY)


def job_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(jobs)).scalar_one())


def test_a_repeated_key_answers_the_first_jobs_and_creates_none(store: Store) -> None:
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    first = submit(store, alice.id, count=2, idempotency=claim())

    again = submit(store, alice.id, count=2, idempotency=claim(), now=T0 + 60)

    assert [j.id for j in again] == [j.id for j in first]
    assert job_count(store) == 2
    assert store.keyed_submission(alice.id, claim()) == again


def test_a_key_with_another_request_is_refused_and_creates_nothing(store: Store) -> None:
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    submit(store, alice.id, idempotency=claim())

    with pytest.raises(Invalid) as refused:
        submit(store, alice.id, file_sha256=SHA_B, idempotency=claim(request_hash="2" * 64))

    assert refused.value.field == "Idempotency-Key"
    assert "different submission" in refused.value.message
    assert job_count(store) == 1


def test_keys_belong_to_their_member(store: Store) -> None:
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    bob = store.create_member("bob", Role.MEMBER, now=T0)
    mine = submit(store, alice.id, idempotency=claim())
    theirs = submit(store, bob.id, idempotency=claim(request_hash="2" * 64))

    assert mine[0].id != theirs[0].id
    assert theirs[0].member_id == bob.id


def test_an_expired_key_starts_a_new_submission_and_the_sweep_forgets_old_keys(store: Store) -> None:
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    first = submit(store, alice.id, idempotency=claim())
    later = T0 + DAY + 1

    assert store.keyed_submission(alice.id, claim(now=later)) is None
    second = submit(store, alice.id, idempotency=claim(now=later), now=later)
    assert second[0].id != first[0].id
    assert store.keyed_submission(alice.id, claim(now=later)) == second

    submit(store, alice.id, idempotency=claim("k-2"), now=T0)
    assert store.remove_expired_submission_keys(before=later - DAY) == 1  # k-2, made at T0
    assert store.keyed_submission(alice.id, claim(now=later)) == second


def test_racing_requests_with_one_key_make_one_set_of_jobs(store: Store) -> None:
    """On PostgreSQL the losers wait on the key's unique index, fail, and answer the winner's jobs."""
    alice = store.create_member("alice", Role.MEMBER, now=T0)

    answers = race(8, lambda _: [j.id for j in submit(store, alice.id, count=2, idempotency=claim())])

    assert all(answer == answers[0] for answer in answers), answers
    assert job_count(store) == 2


def test_a_version_3_database_gains_submission_keys_and_keeps_its_jobs(
    engine: Engine, fresh_url: str, request: pytest.FixtureRequest
) -> None:
    create_version_with_alice(engine, 3)  # no submission keys yet

    assert migrate(engine) == SCHEMA_VERSION >= 4

    with engine.connect() as conn:
        assert current_version(conn) == SCHEMA_VERSION
        assert conn.execute(select(func.count()).select_from(submission_keys)).scalar_one() == 0
    assert_same_as_fresh(engine, fresh_url, request)
