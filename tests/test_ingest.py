"""The ingest queue: a printer's newer status replaces its older one still waiting; nothing else is
ever replaced or lost, goes ahead of the statuses waiting, and each printer's messages come out in the
order they went in."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.ingest import CoalescingQueue

from .brokers import wait_until

KEYS = st.sampled_from(["a", "b", "c"])
#: ("status", key), ("other", key) or ("get",): what the network thread and the ingest thread do.
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("status"), KEYS),
        st.tuples(st.just("other"), KEYS),
        st.tuples(st.just("get")),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_statuses_coalesce_and_nothing_else_is_lost_or_reordered(ops: list[tuple[str, ...]]) -> None:
    queue: CoalescingQueue[int] = CoalescingQueue()
    put: list[tuple[int, str, bool]] = []  # (sequence number, key, is a status), in the order put
    out: list[tuple[int, str, bool]] = []
    replaced = 0

    def take() -> None:
        got = queue.get(timeout=0)
        if got is not None:
            key, seq, status, waited = got
            assert waited >= 0
            if status:
                # Other messages go ahead of statuses: one comes out while some wait only when the
                # next message of its printer was put before all of them (it goes ahead with that).
                taken = {s for s, _, _ in out}
                waiting = [s for s, _, st in put if not st and s not in taken]
                mine = [s for s, k, st in put if not st and k == key and s > seq]
                assert not waiting or (mine and mine[0] <= waiting[0]), (
                    f"status {seq} of {key} came out while {waiting} waited"
                )
            out.append((seq, key, status))

    for op in ops:
        if op[0] == "get":
            take()
            continue
        kind, key = op
        seq = len(put)
        put.append((seq, key, kind == "status"))
        if kind == "status":
            replaced += queue.put_status(key, seq)
        else:
            assert queue.put(key, seq)
        waiting_others = sum(1 for s, _, status in put if not status) - sum(
            1 for _, _, status in out if not status
        )
        # At most one replaceable status a printer, plus one closed by each waiting message.
        assert len(queue) <= 3 + 2 * waiting_others
    while len(queue):
        take()
    assert queue.get(timeout=0) is None

    # Everything that is not a status comes out once, in order.
    assert [s for s, _, status in out if not status] == [s for s, _, status in put if not status]
    # Each printer's messages come out in the order they went in.
    for key in "abc":
        mine = [s for s, k, _ in out if k == key]
        assert mine == sorted(mine)
    # A status that never came out was superseded by a newer one of its printer that did; the newest
    # status of each printer always comes out.
    delivered = {s for s, _, _ in out}
    for seq, key, status in put:
        if status and seq not in delivered:
            assert any(s in delivered for s, k, st in put[seq + 1 :] if k == key and st), (
                f"{seq} of {key} lost"
            )
    for key in "abc":
        statuses = [s for s, k, status in put if k == key and status]
        if statuses:
            assert statuses[-1] in delivered
    assert replaced + queue.dropped_stale == queue.superseded == len(put) - len(out)


def test_a_full_queue_holds_the_reader_until_there_is_room_and_close_wakes_everyone() -> None:
    queue: CoalescingQueue[str] = CoalescingQueue(max_waiting=2)
    assert queue.put("a", "1") and queue.put("a", "2")
    assert not queue.put("b", "3", timeout=0.05), "no room: reported, and queued anyway"
    queue.put_status("a", "status")  # statuses never wait for room
    done = threading.Event()

    def reader() -> None:
        queue.put("c", "4")
        done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    assert not done.wait(0.1)
    assert queue.get() == ("a", "1", False, pytest.approx(0, abs=1))
    assert queue.get() is not None
    wait_until(done.is_set, 5, "the reader to find room")
    thread.join()
    # "4" goes ahead of the status waiting ("a"'s own messages are all out by then).
    assert [queue.get(timeout=0)[1] for _ in range(3)] == ["3", "4", "status"]  # type: ignore[index]

    waiting = threading.Thread(target=lambda: done.clear() if queue.get() is None else None)
    done.set()
    waiting.start()
    queue.close()
    waiting.join(5)
    assert not done.is_set(), "close() woke the getter with None"


def test_a_printer_is_held_while_anything_of_it_waits_or_is_in_hand() -> None:
    queue: CoalescingQueue[str] = CoalescingQueue()
    assert not queue.holds("a")
    queue.put_status("a", "status")
    queue.put("a", "event")
    queue.put("b", "event")
    assert queue.holds("a") and queue.holds("b") and not queue.holds("c")
    assert queue.get(timeout=0)[:2] == ("a", "status")  # type: ignore[index]
    queue.done()
    assert queue.holds("a"), "its event still waits"
    assert queue.get(timeout=0)[:2] == ("a", "event")  # type: ignore[index]
    assert queue.holds("a"), "taken, but not yet done with"
    queue.done()
    assert not queue.holds("a") and queue.holds("b")
    assert queue.get(timeout=0)[:2] == ("b", "event")  # type: ignore[index]
    assert queue.holds("b")
    assert queue.get(timeout=0) is None, "nothing left"
    assert not queue.holds("b"), "asking for the next message lets go of the last one"


def test_an_event_goes_ahead_of_every_printers_waiting_status_taking_its_own_printers_along() -> None:
    # Overload: every printer has a status waiting. An event of one of them is handled next, after
    # that printer's own status from before it, and not after the thousand others.
    queue: CoalescingQueue[str] = CoalescingQueue()
    for n in range(1000):
        queue.put_status(f"p{n}", f"status {n}")
    queue.put("p500", "done")
    queue.put("p7", "ack")
    assert [queue.get(timeout=0)[:3] for _ in range(2)] == [  # type: ignore[index]
        ("p500", "status 500", True),
        ("p500", "done", False),
    ]
    queue.put_status("p500", "status after done")  # waits behind the others
    queue.put_status("p7", "status after ack")  # waits behind the ack, and supersedes the one before it
    assert queue.get(timeout=0)[:3] == ("p7", "ack", False)  # type: ignore[index]
    rest = [queue.get(timeout=0) for _ in range(1000)]
    assert [got[1] for got in rest if got is not None] == [
        f"status {n}" for n in range(1000) if n not in (7, 500)
    ] + ["status after done", "status after ack"]
    assert len(queue) == 0 and queue.get(timeout=0) is None
