"""The outbox's worker against real receivers: an SMTP server for mail, an HTTP server for Apprise's
json:// and ntfy:// posts and for signed webhooks (checked as an integration would check them)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.app import FleetApp, build
from fleet.errors import Invalid
from fleet.metrics import FleetMetrics
from fleet.models import Member, Role
from fleet.notify import webhooks
from fleet.notify.worker import NotifyOptions, OutboxWorker
from fleet.store import BlobStore, PlateSnapshot, open_store
from tests.store.helpers import T0, make_printer
from tests.store.test_outbox import print_job

from .receivers import Inbox, Posts, http_receiver, smtp_inbox

FAST = NotifyOptions(retry_base_s=10, retry_max_s=100, max_attempts=3, pause_after=2)
ALICE = "alice@lab.test"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FleetApp]:
    store = open_store(None, tmp_path / "data")
    yield build(store, BlobStore(tmp_path / "data" / "files"), clock=lambda: T0)
    store.close()


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    with smtp_inbox() as found:
        yield found


@pytest.fixture
def posts() -> Iterator[Posts]:
    with http_receiver() as found:
        yield found


def members(app: FleetApp) -> tuple[Member, Member]:
    ada, _ = app.members.add_member("ada", Role.MANAGER)
    alice, _ = app.members.add_member("alice", Role.MEMBER)
    app.store.create_printer(make_printer("mk4", name="Prusa MK4"))
    return ada, alice


def test_a_member_is_told_in_french_by_mail_and_json_and_a_webhook_gets_signed_deliveries(
    app: FleetApp, inbox: Inbox, posts: Posts
) -> None:
    ada, alice = members(app)
    kinds = ["job_started", "job_done", "bed_clear"]
    mail = app.notifications.add_channel(alice, "mail", inbox.url(ALICE), kinds, language="fr")
    host = posts.base.removeprefix("http://")
    app.notifications.add_channel(alice, "json", f"json://{host}/json", kinds)
    app.notifications.add_channel(alice, "ntfy", f"ntfy://{host}/lab-alice", kinds)  # ntfy's JSON publish
    hook, secret = app.notifications.add_webhook(ada, f"{posts.base}/hook", kinds)
    posts.secrets["/hook"] = secret
    assert "127.0.0.1" in mail.shown and "alice" not in mail.shown

    job_id = print_job(app.store, alice.id)
    app.store.add_snapshot(PlateSnapshot("mk4", job_id, "image/png", T0 + 4, b"\x89PNG\r\n\x1a\nplate"))
    metrics = FleetMetrics()
    worker = OutboxWorker(app.store, FAST, clock=lambda: T0 + 5, metrics=metrics)
    assert worker.run_pending() == 12
    assert worker.run_pending() == 0  # everything went, once
    # Counted by kind of channel, never by URL; each attempt timed.
    counters = metrics.snapshot()["counters"]
    assert {name: n for name, n in counters.items() if name.startswith("notifications.")} == {
        f"notifications.delivered{{channel={kind}}}": 3 for kind in ("json", "mailto", "ntfy", "webhook")
    }
    assert metrics.snapshot()["histograms"]["notifications.send_s"]["count"] == 12

    subjects = ["Votre impression a commencé", "Votre impression est terminée", "Libérez le plateau"]
    assert sorted(inbox.subjects(ALICE)) == sorted(subjects)
    done = next(m for m in inbox.mails if m.subject == subjects[1])
    assert "benchy.gcode" in done.text and "Prusa MK4" in done.text
    assert done.attachments == (f"plate-{job_id}.png",)  # the plate photo goes with "done"
    assert sorted(b["title"] for b in posts.bodies("/json")) == sorted(subjects)
    # ntfy: JSON to its root, naming the topic; with the plate photo, the file to the topic's own path.
    pushed, photos = posts.bodies("/"), posts.bodies("/lab-alice")
    assert [b["title"] for b in pushed] == [subjects[0]] and pushed[0]["topic"] == "lab-alice"
    assert sorted(b["title"] for b in photos) == sorted(subjects[1:])
    assert {b["filename"] for b in photos} == {f"plate-{job_id}.png"} and all(
        b["attached_bytes"] for b in photos
    )
    delivered = posts.bodies("/hook")
    assert sorted(b["kind"] for b in delivered) == sorted(kinds) and posts.refused == []
    assert {b["data"]["job_id"] for b in delivered} == {job_id}
    log = app.notifications.deliveries(ada, hook.id)
    assert {d.state for d in log.items} == {"sent"} and {d.last_status for d in log.items} == {200}


def test_the_receiver_refuses_a_wrong_signature_and_a_stale_timestamp(posts: Posts) -> None:
    posts.secrets["/hook"] = "whsec_right"
    body = webhooks.body_of("k>w1", "k", "job_done", T0, {"job_id": 1})
    url = f"{posts.base}/hook"
    assert webhooks.post(url, "whsec_right", "k>w1", "k", body).status == 200
    assert webhooks.post(url, "whsec_wrong", "k>w1", "k", body).status == 400
    stale = webhooks.post(url, "whsec_right", "k>w1", "k", body, now=time.time() - 3600)
    assert stale.status == 400 and stale.error == "the receiver answered HTTP 400"
    wrong, stale_why = (why for _, why in posts.refused)
    assert wrong == "the signature does not match the body"
    assert re.fullmatch(r"the timestamp is 360[01] s from now, past the tolerance", stale_why)


def test_a_failing_channel_backs_off_then_pauses_and_its_secret_never_reaches_the_log(
    app: FleetApp, posts: Posts, caplog: pytest.LogCaptureFixture
) -> None:
    _, alice = members(app)
    posts.failing["/down"] = 503
    host = posts.base.removeprefix("http://")
    url = f"json://bot:pa55wordvalue@{host}/down?:X-Api-Key=sup3rsecretkey"
    channel = app.notifications.add_channel(alice, "broken", url, ["job_started"])
    print_job(app.store, alice.id)
    now = [T0 + 10]
    metrics = FleetMetrics()
    worker = OutboxWorker(app.store, FAST, clock=lambda: now[0], metrics=metrics)
    with caplog.at_level(logging.DEBUG):  # Apprise's own debug lines included
        assert worker.run_pending() == 1
        assert worker.run_pending() == 0  # backing off
        now[0] += 12
        assert worker.run_pending() == 1
    (shown,) = app.notifications.profile(alice).channels
    assert shown.id == channel.id and shown.paused_at == T0 + 22 and shown.failures == 2
    assert shown.last_error and "sup3rsecretkey" not in shown.last_error
    for secret in ("sup3rsecretkey", "pa55wordvalue"):
        assert secret not in caplog.text and secret not in repr(shown)
    assert "could not deliver" in caplog.text and "JSON" in caplog.text  # the log says what happened
    now[0] += 1000
    assert worker.run_pending() == 0  # paused: it waits for its member
    posts.failing.clear()
    app.notifications.update_channel(alice, channel.id, resume=True)
    assert worker.run_pending() == 1
    assert [b["title"] for b in posts.bodies("/down")] == ["Your print started"]
    assert metrics.counter("notifications.failed", channel="json") == 2
    assert metrics.counter("notifications.delivered", channel="json") == 1
    assert not any("pa55word" in name or host in name for name in metrics.snapshot()["counters"])


def test_a_channel_url_apprise_cannot_use_is_refused_without_echoing_it(app: FleetApp) -> None:
    _, alice = members(app)
    for url, words in [
        ("https://example.org/x", "must name an Apprise service"),
        ("nosuchservice://token@x", "Apprise cannot use this nosuchservice:// URL"),
        ("mailto://", "Apprise cannot use"),
    ]:
        with pytest.raises(Invalid, match=words) as refused:
            app.notifications.add_channel(alice, "x", url, ["job_done"])
        assert refused.value.field == "url"
    with pytest.raises(Invalid, match="only managers may be told of printer_error"):
        app.notifications.add_channel(alice, "x", "json://127.0.0.1/x", ["printer_error"])
