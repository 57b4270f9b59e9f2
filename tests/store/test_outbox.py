"""The outbox in the store (SQLite and PostgreSQL): rows queued inside the writes that cause them,
once per event and target, claimed without two workers taking one, retried, paused; migration 12 → 13."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from fleet.errors import Conflict
from fleet.models import Role
from fleet.notify.events import EventKind
from fleet.states import JobState, PrinterState
from fleet.store import ChannelTarget, PlateSnapshot, Store, WebhookTarget, open_store
from fleet.store.schema import outbox

from .helpers import T0, make_printer, race, submit
from .test_enrollment import assert_upgrade_keeps_alice
from .test_spools import BLACK_PETG

ALL_JOB_KINDS = (EventKind.JOB_STARTED, EventKind.JOB_DONE, EventKind.BED_CLEAR, EventKind.JOB_FAILED)


def channel(store: Store, member_id: int, kinds: tuple[EventKind, ...], label: str = "mail") -> int:
    made = store.add_channel(
        member_id,
        label=label,
        url=f"mailto://u:pw@{label}.test",
        shown="mailto://…",
        service="E-Mail",
        kinds=kinds,
        now=T0,
        limit=10,
    )
    return made.id


def print_job(store: Store, member_id: int, printer: str = "mk4") -> int:
    """A job through assigned, printing and done on ``printer``, as the printer reports it."""
    (job,) = submit(store, member_id)
    assert store.assign_job(job.id, printer, actor="scheduler", now=T0 + 1)
    hold = {"state": PrinterState.PRINTING, "current_job_id": job.id}
    store.transition_job(
        job.id, JobState.PRINTING, actor="p", reason="started", now=T0 + 2, printer_changes=lambda p: hold
    )
    settle = {"state": PrinterState.AWAITING_BED_CLEAR, "current_job_id": None}
    store.transition_job(
        job.id, JobState.DONE, actor="p", reason="done", now=T0 + 3, printer_changes=lambda p: settle
    )
    return job.id


def kinds_queued(store: Store, **where: int) -> list[str]:
    return [d.kind.value for d in store.pending_deliveries(**where)]


def test_a_printed_job_queues_started_done_and_clear_the_plate_for_the_channels_that_chose_them(
    store: Store,
) -> None:
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    bob = store.create_member("bob", Role.MEMBER, now=T0)
    store.create_printer(make_printer("mk4"))
    mail = channel(store, alice.id, ALL_JOB_KINDS)
    only_done = channel(store, alice.id, (EventKind.JOB_DONE,), label="ntfy")
    bobs = channel(store, bob.id, ALL_JOB_KINDS, label="bob")
    hook = store.add_webhook(None, url="http://127.0.0.1:1/h", secret="s", kinds=[EventKind.JOB_DONE], now=T0)

    job_id = print_job(store, alice.id)

    assert kinds_queued(store, channel_id=mail) == ["job_started", "job_done", "bed_clear"]
    assert kinds_queued(store, channel_id=only_done) == ["job_done"]
    assert kinds_queued(store, channel_id=bobs) == []  # not bob's job
    (delivery,) = store.pending_deliveries(webhook_id=hook.id)
    assert delivery.job_id == job_id
    assert delivery.data["filename"] == "benchy.gcode" and delivery.data["printer_id"] == "mk4"
    # "done" waits for the plate photo (the store's default), the others are due at once.
    due = {d.kind: d.due_at for d in store.pending_deliveries(channel_id=mail)}
    assert due[EventKind.JOB_STARTED] == T0 + 2 and due[EventKind.JOB_DONE] > T0 + 3
    # The photo arriving makes the waiting "done" due at once.
    store.add_snapshot(PlateSnapshot("mk4", job_id, "image/png", T0 + 5, b"\x89PNG\r\n\x1a\n"))
    due = {d.kind: d.due_at for d in store.pending_deliveries(channel_id=mail)}
    assert due[EventKind.JOB_DONE] == T0 + 5


def test_a_refused_move_queues_nothing_and_a_repeated_event_only_once(store: Store) -> None:
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    mail = channel(store, alice.id, (EventKind.JOB_DONE, EventKind.JOB_FAILED))
    (job,) = submit(store, alice.id)
    with pytest.raises(Conflict):  # queued → done is no move: the whole write rolls back
        store.transition_job(job.id, JobState.DONE, actor="p", reason="", now=T0)
    assert kinds_queued(store, channel_id=mail) == []

    store.create_printer(make_printer("mk4", state=PrinterState.PRINTING))
    with store.engine.begin() as conn:
        from fleet.store import notices

        for _ in range(2):  # the same event raised again (a report received twice) adds nothing
            notices.raise_event(
                conn, EventKind.JOB_FAILED, "job:1:failed:x", {"job_id": 1}, at=T0, members=[alice.id]
            )
    assert kinds_queued(store, channel_id=mail) == ["job_failed"]


def test_approvals_reach_the_member_and_the_managers_who_chose_them(store: Store) -> None:
    ada = store.create_member("ada", Role.MANAGER, now=T0)
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    hers = channel(store, alice.id, (EventKind.JOB_NEEDS_APPROVAL, EventKind.JOB_REFUSED))
    lab = channel(store, ada.id, (EventKind.JOB_NEEDS_APPROVAL, EventKind.PRINTER_ERROR), label="lab")
    store.create_printer(make_printer("mk4"))
    (job,) = submit(
        store,
        alice.id,
        state=JobState.SUBMITTED,
        then=[(JobState.AWAITING_APPROVAL, "fleet", "needs approval")],
    )
    store.transition_job(job.id, JobState.CANCELLED, actor="manager:1", reason="too big", now=T0 + 1)
    store.update_printer("mk4", state=PrinterState.ERROR)
    store.update_printer("mk4", state=PrinterState.ERROR)  # no move: no second error

    assert kinds_queued(store, channel_id=hers) == ["job_needs_approval", "job_refused"]
    assert kinds_queued(store, channel_id=lab) == ["job_needs_approval", "printer_error"]
    refused = store.pending_deliveries(channel_id=hers)[1]
    assert refused.data["reason"] == "too big"


def test_claims_lease_rows_and_failures_back_off_then_pause_the_channel(store: Store) -> None:
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    store.set_notify_language(alice.id, "fr")
    mail = channel(store, alice.id, (EventKind.JOB_STARTED, EventKind.JOB_DONE, EventKind.BED_CLEAR))
    store.create_printer(make_printer("mk4"))
    print_job(store, alice.id)
    store.notice_delays.clear()

    first = store.claim_deliveries(T0 + 100, limit=5, lease_s=60)
    assert [c.delivery.kind for c in first] == [
        EventKind.JOB_STARTED,
        EventKind.JOB_DONE,
        EventKind.BED_CLEAR,
    ]
    assert first[0].target == ChannelTarget(mail, alice.id, "mailto://u:pw@mail.test", "fr")
    # Leased: another claim meanwhile gets nothing.
    assert store.claim_deliveries(T0 + 100, limit=5, lease_s=60) == []
    store.delivery_sent(first[2].delivery.id, now=T0 + 101)

    started = first[0].delivery.id
    store.delivery_sent(started, now=T0 + 201)
    assert (
        store.delivery_failed(
            first[1].delivery.id, now=T0 + 201, error="refused", retry_at=T0 + 500, pause_after=2
        )
        is False
    )
    assert store.claim_deliveries(T0 + 300, limit=5, lease_s=60) == []  # waits for its retry
    (again,) = store.claim_deliveries(T0 + 500, limit=5, lease_s=60)
    assert again.delivery.attempts == 1 and again.delivery.last_error == "refused"
    assert store.delivery_failed(
        again.delivery.id, now=T0 + 501, error="still", retry_at=T0 + 600, pause_after=2
    )
    (shown,) = store.channels_of(alice.id)
    assert shown.paused_at == T0 + 501 and shown.failures == 2 and shown.last_error == "still"
    assert store.claim_deliveries(T0 + 10_000, limit=5, lease_s=60) == []  # paused: nothing goes
    store.update_channel(alice.id, mail, resume=True)
    assert [c.delivery.kind for c in store.claim_deliveries(T0 + 10_000, limit=5, lease_s=60)] == [
        EventKind.JOB_DONE
    ]


def test_a_webhook_delivery_log_pages_newest_first_and_a_replay_is_a_new_delivery(store: Store) -> None:
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    store.create_printer(make_printer("mk4"))
    hook = store.add_webhook(None, url="http://127.0.0.1:1/h", secret="s", kinds=list(ALL_JOB_KINDS), now=T0)
    mail = channel(store, alice.id, ALL_JOB_KINDS)
    print_job(store, alice.id)
    page = store.webhook_deliveries(hook.id, limit=2)
    assert [d.kind.value for d in page.items] == ["bed_clear", "job_done"] and page.next_after is not None
    rest = store.webhook_deliveries(hook.id, before=page.next_after, limit=2)
    assert [d.kind.value for d in rest.items] == ["job_started"] and rest.next_after is None

    # A worker that died mid-send: after its lease, a webhook's delivery goes again (same id), a
    # channel's is given up (a person is told at most once).
    assert len(store.claim_deliveries(T0 + 40, limit=10, lease_s=60)) == 6
    again = store.claim_deliveries(T0 + 101, limit=10, lease_s=60)
    assert {c.target for c in again} == {WebhookTarget(hook.id, "http://127.0.0.1:1/h", "s")} and len(
        again
    ) == 3
    assert store.pending_deliveries(channel_id=mail) == []
    for claimed in again:
        store.delivery_sent(claimed.delivery.id, now=T0 + 102)

    replay = store.replay_delivery(hook.id, rest.items[0].id, now=T0 + 50)
    assert replay.event_key == rest.items[0].event_key and replay.delivery_key != rest.items[0].delivery_key
    assert replay.state == "pending" and replay.due_at == T0 + 50
    (claimed,) = store.claim_deliveries(T0 + 200, limit=10, lease_s=60)
    assert claimed.target == WebhookTarget(hook.id, "http://127.0.0.1:1/h", "s")
    assert claimed.delivery.delivery_key == replay.delivery_key


def test_time_raises_offline_and_waiting_once_and_spool_low_per_occurrence(store: Store) -> None:
    ada = store.create_member("ada", Role.MANAGER, now=T0)
    lab = channel(store, ada.id, (EventKind.PRINTER_OFFLINE, EventKind.JOB_WAITING, EventKind.SPOOL_LOW))
    store.create_printer(make_printer("mk4", state=PrinterState.OFFLINE, last_seen=T0))
    submit(store, ada.id)
    assert store.raise_overdue(T0 + 60, offline_after_s=600, waiting_after_s=3600) == 0
    assert store.raise_overdue(T0 + 4000, offline_after_s=600, waiting_after_s=3600) == 2
    assert store.raise_overdue(T0 + 5000, offline_after_s=600, waiting_after_s=3600) == 0
    assert store.raise_spool_low("mk4", "PLA red", 42.4, occurrence="spool-7", now=T0) == 1
    assert store.raise_spool_low("mk4", "PLA red", 30, occurrence="spool-7", now=T0) == 0
    assert sorted(kinds_queued(store, channel_id=lab)) == ["job_waiting", "printer_offline", "spool_low"]


def test_a_version_12_database_gains_the_notification_tables_and_keeps_its_members(
    engine: Engine, fresh_url: str, data_dir: Path, request: pytest.FixtureRequest
) -> None:
    assert_upgrade_keeps_alice(engine, fresh_url, data_dir, request, from_version=12, new_table=outbox)


def test_workers_claiming_at_once_never_take_one_delivery_twice(
    store: Store, store_url: str, data_dir: Path
) -> None:
    """Four workers, each with its own engine as separate fleet processes would have (SKIP LOCKED on
    PostgreSQL, one writer at a time on SQLite): every delivery is taken exactly once."""
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    store.create_printer(make_printer("mk4"))
    for n in range(3):
        channel(store, alice.id, ALL_JOB_KINDS, label=f"c{n}")
    for _ in range(4):
        print_job(store, alice.id)
        store.update_printer("mk4", state=PrinterState.IDLE)
    workers = [open_store(store_url, data_dir) for _ in range(4)]
    try:
        taken = race(
            4, lambda i: [c.delivery.id for c in workers[i].claim_deliveries(T0 + 100, limit=20, lease_s=60)]
        )
    finally:
        for each in workers:
            each.close()
    every = [delivery for batch in taken for delivery in batch]
    assert len(every) == len(set(every)) == 4 * 3 * 3


def test_a_job_handed_to_a_home_printer_is_offered_to_the_member_who_enrolled_it(store: Store) -> None:
    ada = store.create_member("ada", Role.MANAGER, now=T0)
    hobbyist = store.create_member("hob", Role.MEMBER, now=T0)
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    hers = channel(store, hobbyist.id, (EventKind.JOB_OFFERED,))
    labs = channel(store, ada.id, (EventKind.JOB_OFFERED,), label="ada")
    for code, maker, printer in (("a" * 64, hobbyist.id, "home"), ("b" * 64, ada.id, "lab")):
        store.add_enrollment_code(code, created_by=maker, now=T0, expires_at=T0 + 60)
        store.enroll_printer(
            code, make_printer(printer), mqtt_password_hash="x", http_token_hash=code, now=T0
        )
    first, second = submit(store, alice.id, count=2)
    assert store.assign_job(first.id, "home", actor="scheduler", now=T0 + 1)
    assert store.assign_job(second.id, "lab", actor="scheduler", now=T0 + 1)  # a manager's: no owner

    (offer,) = store.pending_deliveries(channel_id=hers)
    assert offer.kind is EventKind.JOB_OFFERED and offer.data["printer_id"] == "home"
    assert store.pending_deliveries(channel_id=labs) == []


def test_a_job_that_takes_its_spool_below_100_g_tells_the_managers_once_in_its_transaction(
    store: Store,
) -> None:
    ada = store.create_member("ada", Role.MANAGER, now=T0)
    alice = store.create_member("alice", Role.MEMBER, now=T0)
    lab = channel(store, ada.id, (EventKind.SPOOL_LOW,), label="lab")
    store.create_printer(make_printer("mk4"))
    spool = store.create_spool({**BLACK_PETG, "remaining_grams": 150.0}, now=T0)
    store.load_spool(spool.id, "mk4", now=T0)

    def printed(weight: float) -> None:
        (job,) = submit(store, alice.id, analysis={"filament_weight_g": weight})
        assert store.assign_job(job.id, "mk4", actor="scheduler", now=T0)
        hold = {"state": PrinterState.PRINTING, "current_job_id": job.id}
        store.transition_job(
            job.id, JobState.PRINTING, actor="p", reason="", now=T0, printer_changes=lambda p: hold
        )
        free = {"state": PrinterState.IDLE, "current_job_id": None}
        store.transition_job(
            job.id, JobState.DONE, actor="p", reason="", now=T0 + 60, printer_changes=lambda p: free
        )

    printed(40.0)  # 110 g left: not low yet
    assert kinds_queued(store, channel_id=lab) == []
    printed(40.0)  # 70 g left: low
    (told,) = store.pending_deliveries(channel_id=lab)
    assert told.kind is EventKind.SPOOL_LOW
    assert told.data["spool"] == "black PETG" and told.data["remaining_g"] == 70
    printed(40.0)  # lower still: the managers were told already
    assert kinds_queued(store, channel_id=lab) == ["spool_low"]
