"""The live-update hub: one producer, changes only, a cap on clients, dropped when stalled."""

from __future__ import annotations

import threading
import time

from fleet.models import LiveStatus, PrinterChanges
from fleet.web.events import LiveHub, Message, Pending, changes, event_stream


def snap(queue_sig: str = "q1", **states: str) -> dict:
    return {"printers": {pid: {"id": pid, "state": s} for pid, s in states.items()}, "queue": queue_sig}


def test_changes_carry_only_what_moved():
    first = changes(None, snap(a="idle", b="printing"))
    assert [m.event for m in first] == ["printers", "queue"]
    assert len(first[0].data["changed"]) == 2

    later = changes(snap(a="idle", b="printing"), snap(a="idle", b="awaiting_bed_clear"))
    assert later == [
        Message("printers", {"changed": [{"id": "b", "state": "awaiting_bed_clear"}], "removed": []})
    ]
    assert changes(snap(a="idle"), snap(a="idle")) == []
    assert changes(snap(a="idle"), snap("q2"))[0].data == {"changed": [], "removed": ["a"]}
    assert Message("queue", {"signature": "x"}).encode() == 'event: queue\ndata: {"signature":"x"}\n\n'


class Source:
    """A snapshot function whose result the test sets, counting its calls."""

    def __init__(self) -> None:
        self.value = snap(a="idle")
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self) -> dict:
        with self.lock:
            self.calls += 1
            return self.value


def test_subscribers_share_one_producer_and_see_each_change():
    source = Source()
    hub = LiveHub(source, interval_s=0.01, max_clients=3)
    try:
        one, two = hub.subscribe(), hub.subscribe()
        assert one is not None and two is not None
        for sub in (one, two):
            got = sub.get(timeout=5)
            assert got.event == "printers" and got.data["changed"] == [{"id": "a", "state": "idle"}]
            assert sub.get(timeout=5).event == "queue"
        with source.lock:
            source.value = snap(a="printing")
        for sub in (one, two):
            assert sub.get(timeout=5).data["changed"] == [{"id": "a", "state": "printing"}]
        assert hub.subscribe() is not None
        assert hub.subscribe() is None  # the cap
    finally:
        hub.close()


def test_a_stalled_subscriber_is_dropped():
    gate = threading.Semaphore(0)  # the test paces the producer: one snapshot per release
    counter = [0]

    def changing() -> dict:
        gate.acquire(timeout=5)
        counter[0] += 1
        return snap(a=str(counter[0]))

    hub = LiveHub(changing, interval_s=0.0, max_clients=2, queue_size=2)
    stalled, healthy = hub.subscribe(), hub.subscribe()
    try:
        for step in range(4):
            gate.release()
            assert healthy.get(timeout=5).data["changed"] == [{"id": "a", "state": str(step + 1)}]
            if step == 0:
                assert healthy.get(timeout=5).event == "queue"
        assert hub.clients == 1
        assert stalled.get(timeout=1) is not None  # the oldest message made room for the notice
        assert stalled.get(timeout=1) is None  # told it was dropped: its stream ends, the browser reconnects
    finally:
        for _ in range(3):
            gate.release()
        hub.close()


def test_the_stream_sends_retry_first_and_ends_when_the_browser_goes():
    hub = LiveHub(Source(), interval_s=0.01)
    sub = hub.subscribe()
    gone = threading.Event()
    now = [0.0]
    stream = event_stream(
        hub, sub, lifetime_s=60, heartbeat_s=1, clock=lambda: now[0], disconnected=gone.is_set, poll_s=0.01
    )
    assert next(stream) == "retry: 1000\n\n"
    assert next(stream).startswith("event: printers\n")
    assert next(stream).startswith("event: queue\n")
    now[0] = 2.0
    assert next(stream) == ": keep-alive\n\n"
    gone.set()
    assert list(stream) == []
    assert hub.clients == 0
    hub.close()


def test_the_stream_ends_after_its_lifetime():
    hub = LiveHub(Source(), interval_s=0.01)
    sub = hub.subscribe()
    ticks = iter([0.0, 0.0, 0.0, 100.0, 100.0, 100.0])
    stream = event_stream(hub, sub, lifetime_s=10, heartbeat_s=60, clock=lambda: next(ticks), poll_s=0.01)
    out = list(stream)
    assert out[0] == "retry: 1000\n\n" and len(out) <= 2
    assert hub.clients == 0
    hub.close()


def test_a_slow_snapshot_spaces_out_the_next():
    starts: list[float] = []

    def slow() -> dict:
        starts.append(time.monotonic())
        time.sleep(0.1)
        return snap(a="idle")

    hub = LiveHub(slow, interval_s=0.01)
    try:
        sub = hub.subscribe()
        assert sub is not None
        deadline = time.monotonic() + 30
        while len(starts) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        hub.close()
    assert len(starts) >= 3
    # Each snapshot took at least 0.1 s, so the producer waited at least as long before the next.
    assert all(b - a >= 0.2 for a, b in zip(starts, starts[1:]))


def test_a_message_is_encoded_once_for_all_browsers():
    message = Message("printers", {"changed": [{"id": "a"}], "removed": []})
    assert message.encode() is message.encode()


class Refresher:
    """A refresh function that records what each pass was told changed."""

    def __init__(self) -> None:
        self.seen: list[Pending] = []

    def __call__(self, last: dict, pending: Pending) -> dict:
        self.seen.append(pending)
        printers = dict(last["printers"])
        for pid in sorted(pending.printers | pending.live):
            printers[pid] = {"id": pid, "state": "changed"}
        return {"printers": printers, "queue": "q2" if pending.queue else last["queue"]}


def test_a_driven_hub_reads_nothing_until_a_note_and_then_only_what_it_names():
    source, refresh = Source(), Refresher()
    hub = LiveHub(source, refresh=refresh, interval_s=0.01, resync_s=3600)
    try:
        sub = hub.subscribe()
        assert sub is not None
        assert sub.get(timeout=5).event == "printers" and sub.get(timeout=5).event == "queue"
        time.sleep(0.2)  # twenty intervals: a polling hub would have taken twenty snapshots by now
        assert (source.calls, refresh.seen) == (1, [])

        hub.mark(printers=["b"], live=["a"], queue=True)
        got = {sub.get(timeout=5).event: None for _ in range(2)}
        assert set(got) == {"printers", "queue"}
        assert source.calls == 1
        assert [(p.printers, p.live, p.queue) for p in refresh.seen] == [({"b"}, {"a"}, True)]
    finally:
        hub.close()


def test_notes_made_during_a_pass_are_gathered_into_the_next():
    entered, release = threading.Event(), threading.Event()
    seen: list[Pending] = []

    def slow_refresh(last: dict, pending: Pending) -> dict:
        seen.append(pending)
        entered.set()
        release.wait(5)
        return last

    hub = LiveHub(Source(), refresh=slow_refresh, interval_s=0.0, resync_s=3600)
    try:
        sub = hub.subscribe()
        assert sub is not None and sub.get(timeout=5).event == "printers"
        hub.mark(live=["a"])
        assert entered.wait(5)
        for pid in ("b", "c", "d"):
            hub.mark(live=[pid])  # while the first refresh runs
        entered.clear()
        release.set()
        assert entered.wait(5)
        assert [p.live for p in seen] == [{"a"}, {"b", "c", "d"}]
    finally:
        release.set()
        hub.close()


def test_a_driven_hub_still_resyncs_for_changes_no_hook_saw():
    source = Source()
    hub = LiveHub(source, refresh=Refresher(), interval_s=0.01, resync_s=0.05)
    try:
        sub = hub.subscribe()
        assert sub is not None and sub.get(timeout=5).event == "printers"
        with source.lock:
            source.value = snap(a="printing")  # another process's change: no note
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = sub.get(timeout=5)
            if message.event == "printers" and message.data["changed"] == [{"id": "a", "state": "printing"}]:
                break
        else:
            raise AssertionError("the resync never showed the change")
    finally:
        hub.close()


def test_the_dashboard_hub_follows_the_services_hooks(fleet, app, people, printer):
    """A live status and a manager's edit reach the stream through the hooks, without full snapshots."""
    hub = app.extensions["crowdfab.dashboard"].hub
    sub = hub.subscribe()
    assert sub is not None
    try:
        first = sub.get(timeout=5)
        assert first.event == "printers" and [c["id"] for c in first.data["changed"]] == ["mk4"]
        snapshots = hub.snapshots
        fleet.app.reports.set_live("mk4", LiveStatus("idle", {"bed": (60.0, 60.0)}, None, None, None, 1.0))
        card = next_printer_card(sub)
        assert card["temps"] == {"bed": [60.0, 60.0]}
        fleet.app.printers.update_printer(people["manager"], "mk4", PrinterChanges(material="PETG"))
        card = next_printer_card(sub)
        assert card["material"] == "PETG" and card["temps"] == {"bed": [60.0, 60.0]}
        assert hub.snapshots == snapshots and hub.refreshes >= 2
    finally:
        hub.close()


def next_printer_card(sub) -> dict:
    while True:
        message = sub.get(timeout=5)
        if message.event == "printers":
            [card] = message.data["changed"]
            return card


def test_a_page_that_comes_back_after_nobody_listened_is_not_shown_the_stale_picture():
    """A browser reconnecting to a fleet process whose live view stood still (its own browsers went
    away, as when another process served them) gets the fleet as it is now, not as it was."""
    source = Source()
    hub = LiveHub(source, interval_s=0.01)
    try:
        first = hub.subscribe()
        assert first is not None
        assert first.get(timeout=5).data["changed"] == [{"id": "a", "state": "idle"}]
        hub.unsubscribe(first)
        deadline = time.monotonic() + 5
        while hub.producing and time.monotonic() < deadline:  # the producer notices, and stops
            time.sleep(0.01)
        with source.lock:
            source.value = snap(a="printing")
        again = hub.subscribe()
        assert again is not None
        assert again.get(timeout=5).data["changed"] == [{"id": "a", "state": "printing"}]
    finally:
        hub.close()
