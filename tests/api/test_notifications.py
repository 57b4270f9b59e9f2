"""/api/v1 notifications and webhooks: who may do what, secrets never sent back, clear refusals."""

from __future__ import annotations

from tests.store.helpers import make_printer

V1 = "/api/v1"
MAIL = "mailto://fleet:hunter2pass@smtp.lab.test:587?to=alice@lab.test"


def test_a_member_keeps_channels_whose_urls_never_come_back(api) -> None:
    alice, bob = api["alice"], api["bob"]
    settings = alice.get(f"{V1}/notifications").get_json()
    assert settings["language"] == "en" and settings["channels"] == []
    assert "printer_error" not in settings["kinds"] and "job_done" in settings["kinds"]
    assert alice.put(f"{V1}/notifications/language", json={"language": "fr"}).get_json()["language"] == "fr"

    made = alice.post(
        f"{V1}/notifications/channels", json={"label": "mail", "url": MAIL, "kinds": ["job_done"]}
    )
    assert made.status_code == 201
    channel = made.get_json()
    assert channel["shown"] == "mailto://****@smtp.lab.test:587/…" and channel["service"] == "E-Mail"
    assert channel["kinds"] == ["job_done"] and channel["paused"] is False
    listed = alice.get(f"{V1}/notifications")
    assert "hunter2pass" not in listed.get_data(as_text=True)

    path = f"{V1}/notifications/channels/{channel['id']}"
    changed = alice.patch(path, json={"kinds": ["job_started", "bed_clear"], "label": "work mail"}).get_json()
    assert changed["kinds"] == ["job_started", "bed_clear"] and changed["label"] == "work mail"
    assert bob.patch(path, json={"label": "mine"}).status_code == 404  # another member's: not there
    assert bob.delete(path).status_code == 404
    assert alice.delete(path).status_code == 204
    assert alice.get(f"{V1}/notifications").get_json()["channels"] == []


def test_bad_channels_are_refused_naming_the_field(api) -> None:
    alice = api["alice"]
    for sent, field, words in [
        ({"label": "x", "url": "https://lab.test/hook", "kinds": []}, "url", "Apprise service"),
        ({"label": "x", "url": "discord://onlyid", "kinds": []}, "url", "Apprise cannot use"),
        ({"label": "x", "url": MAIL, "kinds": ["printer_error"]}, "kinds", "only managers"),
        ({"label": "x", "url": MAIL, "kinds": ["nope"]}, "kinds", "no event kind"),
        ({"label": "", "url": MAIL}, "label", "label"),
        ({"label": "x", "url": MAIL, "extra": 1}, "extra", "unknown channel field"),
    ]:
        refused = alice.post(f"{V1}/notifications/channels", json=sent)
        assert refused.status_code == 422, sent
        problem = refused.get_json()
        assert problem["field"] == field and words in problem["message"], problem
        assert "hunter2pass" not in problem["message"]
    assert alice.put(f"{V1}/notifications/language", json={"language": "de"}).status_code == 422
    assert api["anonymous"].get(f"{V1}/notifications").status_code == 401


def test_webhooks_are_for_managers_and_their_secret_is_shown_once(api) -> None:
    manager, alice = api["manager"], api["alice"]
    sent = {"url": "https://hooks.lab.test/crowdfab", "kinds": ["job_done", "printer_error"]}
    assert alice.post(f"{V1}/webhooks", json=sent).status_code == 403
    assert alice.get(f"{V1}/webhooks").status_code == 403
    made = manager.post(f"{V1}/webhooks", json=sent)
    assert made.status_code == 201
    hook = made.get_json()
    assert hook["secret"].startswith("whsec_") and hook["kinds"] == ["job_done", "printer_error"]
    listed = manager.get(f"{V1}/webhooks").get_json()["webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    assert hook["secret"] not in manager.get(f"{V1}/webhooks").get_data(as_text=True)

    for bad, words in [
        ({"url": "file:///etc/passwd", "kinds": ["job_done"]}, "http:// or https://"),
        ({"url": "http://u:p@lab.test/", "kinds": ["job_done"]}, "user or password"),
        ({"url": "https://lab.test/", "kinds": []}, "kinds"),
    ]:
        refused = manager.post(f"{V1}/webhooks", json=bad)
        assert refused.status_code == 422 and words in refused.get_json()["message"], refused.get_json()

    deliveries = manager.get(f"{V1}/webhooks/{hook['id']}/deliveries")
    assert deliveries.get_json() == {"deliveries": [], "next_cursor": None}
    assert alice.get(f"{V1}/webhooks/{hook['id']}/deliveries").status_code == 403
    assert manager.post(f"{V1}/webhooks/{hook['id']}/deliveries/99/replay").status_code == 404
    assert manager.patch(f"{V1}/webhooks/{hook['id']}", json={"resume": True}).get_json()["paused"] is False
    assert manager.delete(f"{V1}/webhooks/{hook['id']}").status_code == 204
    assert manager.get(f"{V1}/webhooks/{hook['id']}/deliveries").status_code == 404


def test_a_delivery_log_pages_and_replays(api, fleet) -> None:
    manager, alice = api["manager"], api["alice"]
    hook = manager.post(f"{V1}/webhooks", json={"url": "https://hooks.lab.test/x", "kinds": ["spool_low"]})
    hook_id = hook.get_json()["id"]
    fleet.store.create_printer(make_printer("mk4"))
    for n in range(3):
        fleet.app.notifications.spool_low("mk4", "PLA", 40.0 - n, occurrence=f"spool-{n}")
    first = manager.get(f"{V1}/webhooks/{hook_id}/deliveries?limit=2").get_json()
    assert [d["data"]["remaining_g"] for d in first["deliveries"]] == [38, 39]
    rest = manager.get(f"{V1}/webhooks/{hook_id}/deliveries?limit=2&cursor={first['next_cursor']}").get_json()
    assert [d["data"]["remaining_g"] for d in rest["deliveries"]] == [40] and rest["next_cursor"] is None
    oldest = rest["deliveries"][0]
    replay = manager.post(f"{V1}/webhooks/{hook_id}/deliveries/{oldest['id']}/replay")
    assert replay.status_code == 201
    again = replay.get_json()
    assert (
        again["event_key"] == oldest["event_key"]
        and again["id"] != oldest["id"]
        and again["state"] == "pending"
    )
    assert alice.post(f"{V1}/webhooks/{hook_id}/deliveries/{oldest['id']}/replay").status_code == 403
