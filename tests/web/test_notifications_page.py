"""The dashboard's notifications: channels on the account page (URL never shown back, in the page's
language), a paused channel shown and resumed, and the managers' webhooks page with its delivery log."""

from __future__ import annotations

import re

from fleet.notify.events import EventKind
from fleet.store import schema
from tests.store.helpers import make_printer

MAIL = "mailto://fleet:hunter2pass@smtp.lab.test:587?to=alice@lab.test"


def test_a_member_adds_a_channel_whose_url_is_never_shown_and_resumes_it_when_paused(fleet, browsers, people):
    alice = browsers["alice"]
    alice.http.set_cookie("crowdfab_lang", "fr")
    added = alice.post(
        "/account/channels", {"label": "courriel", "url": MAIL, "kind": ["job_done", "bed_clear"]}
    )
    assert added.status_code == 303
    page = alice.get("/account").get_data(as_text=True)
    assert "courriel" in page and "mailto://****@smtp.lab.test:587/…" in page and "hunter2pass" not in page
    assert "Mon impression est terminée" in page  # the kinds, in the page's language
    assert (
        fleet.app.notifications.profile(people["alice"]).language == "fr"
    )  # the page's, at the first channel
    (channel,) = fleet.store.channels_of(people["alice"].id)
    assert channel.kinds == (EventKind.JOB_DONE, EventKind.BED_CLEAR)
    assert "courriel" not in browsers["bob"].get("/account").get_data(as_text=True)

    refused = alice.post("/account/channels", {"label": "x", "url": "https://lab.test/?k=s3cr3tvalue"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Apprise ne peut pas utiliser cette URL" in text
    assert "s3cr3tvalue" not in text  # a refused URL is not put back into the page

    # Paused by the outbox's worker after failures in a row (as the store records them).
    with fleet.store.engine.begin() as conn:
        conn.execute(
            schema.notify_channels.update().values(
                paused_at=1.0, failures=8, last_error="SMTP refused the login"
            )
        )
    paused = alice.get("/account").get_data(as_text=True)
    assert "est suspendu après des échecs répétés (SMTP refused the login)" in paused
    assert alice.post(f"/account/channels/{channel.id}", {"action": "resume"}).status_code == 303
    assert fleet.store.channels_of(people["alice"].id)[0].paused_at is None
    assert browsers["bob"].post(f"/account/channels/{channel.id}", {"action": "delete"}).status_code == 303
    assert fleet.store.channels_of(people["alice"].id) != []  # bob cannot delete alice's channel
    alice.post(f"/account/channels/{channel.id}", {"action": "delete"})
    assert fleet.store.channels_of(people["alice"].id) == []


def test_a_manager_registers_a_webhook_sees_its_secret_once_and_replays_a_delivery(fleet, browsers, people):
    manager = browsers["manager"]
    assert browsers["alice"].get("/webhooks").status_code == 403
    assert (
        browsers["alice"].post("/webhooks", {"url": "https://x.test/", "kind": ["job_done"]}).status_code
        == 403
    )
    made = manager.post("/webhooks", {"url": "https://hooks.lab.test/in", "kind": ["spool_low"]})
    page = made.get_data(as_text=True)
    secret = re.search(r'<code id="webhook-secret">(whsec_[^<]+)</code>', page).group(1)
    assert secret not in manager.get("/webhooks").get_data(as_text=True)
    (hook,) = fleet.store.list_webhooks()
    fleet.app.store.create_printer(make_printer("mk4"))
    fleet.app.notifications.spool_low("mk4", "PLA", 12, occurrence="s1")
    log = manager.get(f"/webhooks/{hook.id}").get_data(as_text=True)
    (delivery_id,) = re.findall(r'id="delivery-(\d+)"', log)
    assert "A spool runs low" in log and "Waiting" in log
    assert manager.post(f"/webhooks/{hook.id}/deliveries/{delivery_id}/replay").status_code == 303
    assert (
        len(re.findall(r'id="delivery-(\d+)"', manager.get(f"/webhooks/{hook.id}").get_data(as_text=True)))
        == 2
    )
    refused = manager.post("/webhooks", {"url": "ftp://x.test/", "kind": ["job_done"]})
    assert refused.status_code == 422 and "http:// or https://" in refused.get_data(as_text=True)
