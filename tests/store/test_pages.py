"""Listings a page at a time (jobs, printers, members, a job's history): keyset pages, on both backends."""

from __future__ import annotations

import pytest

from fleet.errors import NotFound
from fleet.models import JobFilter, Member, Role
from fleet.states import JobState
from fleet.store import Store

from .helpers import T0, make_printer, submit


def all_pages(store: Store, where: JobFilter, limit: int) -> list[list[int]]:
    pages, after = [], None
    while True:
        page = store.job_page(where, after=after, limit=limit)
        pages.append([job.id for job in page.jobs])
        if page.next_after is None:
            return pages
        assert page.next_after == page.jobs[-1].id
        after = page.next_after


def test_pages_cover_every_job_once_in_id_order(store: Store, member: Member) -> None:
    ids = [job.id for job in submit(store, member.id, count=7)]
    pages = all_pages(store, JobFilter(), limit=3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for page in pages for i in page] == sorted(ids)


def test_an_exact_fit_ends_without_an_empty_page(store: Store, member: Member) -> None:
    submit(store, member.id, count=4)
    assert [len(p) for p in all_pages(store, JobFilter(), limit=2)] == [2, 2]
    assert all_pages(store, JobFilter(states=frozenset({JobState.DONE})), limit=2) == [[]]


def test_a_job_added_meanwhile_does_not_shift_the_pages(store: Store, member: Member) -> None:
    first = [job.id for job in submit(store, member.id, count=4)]
    page = store.job_page(JobFilter(), limit=2)
    added = submit(store, member.id)[0].id
    rest = store.job_page(JobFilter(), after=page.next_after, limit=10)
    assert [j.id for j in page.jobs] + [j.id for j in rest.jobs] == [*first, added]


def test_filters_by_state_member_and_submission_time(store: Store, member: Member) -> None:
    other = store.create_member("bob", Role.MEMBER, now=T0)
    early = submit(store, member.id, count=2, now=T0)
    queued_late = submit(store, member.id, now=T0 + 100)[0]
    waiting = submit(store, member.id, state=JobState.AWAITING_APPROVAL, now=T0 + 200)[0]
    bob = submit(store, other.id, now=T0 + 100)[0]

    def ids(**where: object) -> list[int]:
        return [j.id for j in store.job_page(JobFilter(**where), limit=50).jobs]  # type: ignore[arg-type]

    assert ids(member_id=other.id) == [bob.id]
    assert ids(states=frozenset({JobState.AWAITING_APPROVAL})) == [waiting.id]
    assert ids(member_id=member.id, since=T0 + 100) == [queued_late.id, waiting.id]
    assert ids(until=T0 + 100) == [j.id for j in early]  # until is exclusive
    assert ids(since=T0 + 50, until=T0 + 150, states=frozenset({JobState.QUEUED})) == [queued_late.id, bob.id]


def test_a_page_holds_at_least_one_job(store: Store) -> None:
    with pytest.raises(ValueError):
        store.job_page(JobFilter(), limit=0)


def test_printers_come_in_id_order_after_the_cursor(store: Store) -> None:
    for printer_id in ("mk4-2", "mini-1", "mk4-1", "xl"):
        store.create_printer(make_printer(printer_id))
    first = store.printer_page(limit=2)
    assert [p.id for p in first.items] == ["mini-1", "mk4-1"] and first.next_after == "mk4-1"
    rest = store.printer_page(after=first.next_after, limit=2)
    assert [p.id for p in rest.items] == ["mk4-2", "xl"] and rest.next_after is None


def test_members_come_in_id_order_after_the_cursor(store: Store, member: Member) -> None:
    others = [store.create_member(f"m{n}", Role.MEMBER, now=T0).id for n in range(3)]
    first = store.member_page(limit=3)
    assert [m.id for m in first.items] == [member.id, *others[:2]] and first.next_after == others[1]
    rest = store.member_page(after=first.next_after, limit=3)
    assert [m.id for m in rest.items] == others[2:] and rest.next_after is None


def test_a_job_history_comes_in_pages_and_names_a_missing_job(store: Store, member: Member) -> None:
    [job] = submit(store, member.id)
    for n in range(4):
        store.set_priority(job.id, n + 1, actor="manager:1", now=T0 + n)
    every = store.job_events(job.id)
    first = store.event_page(job.id, limit=3)
    rest = store.event_page(job.id, after=first.next_after, limit=3)
    assert first.items + rest.items == every and len(first.items) == 3 and rest.next_after is None
    with pytest.raises(NotFound):
        store.event_page(job.id + 1000)
