"""Members and their API tokens."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from fleet.errors import Conflict, Invalid, NotFound
from fleet.models import Member, Role
from fleet.store import Store
from fleet.store.schema import api_tokens

from .helpers import T0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_create_and_read_back(store: Store) -> None:
    created = store.create_member("alice", Role.MANAGER, requires_approval=True, now=T0)

    assert created == Member(created.id, "alice", Role.MANAGER, True, True, T0)
    assert store.get_member(created.id) == created
    assert store.get_member_by_name("alice") == created


def test_list_in_id_order(store: Store) -> None:
    names = ["carol", "alice", "bob"]
    for offset, name in enumerate(names):
        store.create_member(name, Role.MEMBER, now=T0 + offset)

    assert [member.name for member in store.list_members()] == names


def test_taken_name_is_a_conflict_naming_it(store: Store, member: Member) -> None:
    with pytest.raises(Conflict, match="'alice' is already taken") as caught:
        store.create_member("alice", Role.MANAGER, now=T0)

    assert caught.value.field == "name"
    assert len(store.list_members()) == 1


@pytest.mark.parametrize(
    ("lookup", "message"),
    [
        (lambda store: store.get_member(999), "no member with id 999"),
        (lambda store: store.get_member_by_name("nobody"), "no member named 'nobody'"),
        (lambda store: store.update_member(999, active=False), "no member with id 999"),
        (lambda store: store.add_token(999, "0" * 64, "laptop", T0), "no member with id 999"),
    ],
)
def test_missing_member(store: Store, lookup, message: str) -> None:
    with pytest.raises(NotFound, match=message):
        lookup(store)


def test_update_changes_only_what_is_given(store: Store, member: Member) -> None:
    promoted = store.update_member(member.id, role=Role.MANAGER)
    assert (promoted.role, promoted.requires_approval, promoted.active) == (Role.MANAGER, None, True)

    overridden = store.update_member(member.id, requires_approval=False)
    assert (overridden.role, overridden.requires_approval) == (Role.MANAGER, False)

    # None is a value here: back to following the lab's setting.
    following = store.update_member(member.id, requires_approval=None, active=False)
    assert (following.requires_approval, following.active) == (None, False)
    assert store.get_member(member.id) == following


def test_token_resolves_to_its_member_and_notes_its_use(store: Store, member: Member) -> None:
    store.add_token(member.id, token_hash("secret-1"), "laptop", T0)

    assert store.member_for_token(token_hash("secret-1"), T0 + 60) == member
    assert store.member_for_token(token_hash("wrong"), T0 + 60) is None
    [token] = store.list_tokens(member.id)
    assert (token.label, token.created_at, token.last_used_at) == ("laptop", T0, T0 + 60)


def test_only_the_hash_is_stored(store: Store, member: Member) -> None:
    store.add_token(member.id, token_hash("secret-1"), "laptop", T0)

    with store.engine.connect() as conn:
        stored = conn.execute(select(api_tokens)).all()
    assert [row.token_hash for row in stored] == [token_hash("secret-1")]
    assert all("secret-1" not in str(value) for row in stored for value in row)


@pytest.mark.parametrize("bad", ["secret-1", "A" * 64, "0" * 63, ""])
def test_a_token_that_is_not_a_hash_is_refused(store: Store, member: Member, bad: str) -> None:
    with pytest.raises(Invalid, match="SHA-256"):
        store.add_token(member.id, bad, "laptop", T0)
    assert store.list_tokens(member.id) == []


def test_the_same_token_twice_is_a_conflict(store: Store, member: Member) -> None:
    store.add_token(member.id, token_hash("secret-1"), "laptop", T0)
    other = store.create_member("bob", Role.MEMBER, now=T0)

    with pytest.raises(Conflict):
        store.add_token(other.id, token_hash("secret-1"), "phone", T0)


def test_an_inactive_member_token_is_refused(store: Store, member: Member) -> None:
    store.add_token(member.id, token_hash("secret-1"), "laptop", T0)
    store.update_member(member.id, active=False)

    assert store.member_for_token(token_hash("secret-1"), T0 + 1) is None
    assert store.list_tokens(member.id)[0].last_used_at is None

    store.update_member(member.id, active=True)
    assert store.member_for_token(token_hash("secret-1"), T0 + 2) is not None


def test_revoke_removes_every_token_of_that_member_only(store: Store, member: Member) -> None:
    bob = store.create_member("bob", Role.MEMBER, now=T0)
    store.add_token(member.id, token_hash("a1"), "laptop", T0)
    store.add_token(member.id, token_hash("a2"), "phone", T0)
    store.add_token(bob.id, token_hash("b1"), "laptop", T0)

    assert store.revoke_tokens(member.id) == 2

    assert store.member_for_token(token_hash("a1"), T0) is None
    assert store.member_for_token(token_hash("a2"), T0) is None
    assert store.member_for_token(token_hash("b1"), T0) == bob
