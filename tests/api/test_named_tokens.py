"""Named tokens: a member signs in with name and password for a token of its own, lists and revokes them."""

from __future__ import annotations

from fleet.api.openapi import openapi_document

PASSWORD = "correct horse battery"


def set_password(client, password: str = PASSWORD) -> None:
    assert (
        client.put(f"/api/v1/members/{client.member_id}/password", json={"password": password}).status_code
        == 204
    )


def sign_in(api, name: str, password: str = PASSWORD, label: str = "OctoPrint user ada on printer mini-1"):
    return api["anonymous"].post("/api/v1/tokens", json={"name": name, "password": password, "label": label})


def as_token(api, token: str):
    return api["anonymous"].get("/api/v1/jobs/mine", headers={"Authorization": f"Bearer {token}"})


def test_right_password_issues_a_named_token_that_works_beside_the_others(api):
    set_password(api["alice"])
    answer = sign_in(api, "alice")
    assert answer.status_code == 201, answer.get_json()
    issued = answer.get_json()
    assert issued["label"] == "OctoPrint user ada on printer mini-1" and issued["token"] not in issued["id"]
    assert as_token(api, issued["token"]).status_code == 200
    assert api["alice"].get("/api/v1/jobs/mine").status_code == 200  # the first token keeps working
    listed = api["alice"].get(f"/api/v1/members/{api['alice'].member_id}/tokens").get_json()["tokens"]
    assert [t["label"] for t in listed] == ["initial", "OctoPrint user ada on printer mini-1"]
    assert all(issued["token"] not in str(t) for t in listed)


def test_wrong_password_unknown_name_and_no_password_get_one_message(api):
    set_password(api["alice"])
    for name, password in (("alice", "wrong password!"), ("nobody", PASSWORD), ("bob", PASSWORD)):
        answer = sign_in(api, name, password)
        assert answer.status_code == 401
        assert answer.get_json()["message"] == "wrong name or password"


def test_bad_body_names_the_field(api):
    answer = api["anonymous"].post("/api/v1/tokens", json={"name": "alice", "password": PASSWORD})
    assert answer.status_code == 422 and "label" in answer.get_json()["message"]


def test_wrong_tries_are_limited_with_the_dashboard_sign_in(api):
    set_password(api["alice"])
    for _ in range(5):
        assert sign_in(api, "alice", "wrong password!").status_code == 401
    limited = sign_in(api, "alice")  # even the right password waits
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    # The same count the dashboard's sign-in form keeps.
    limiter = api["anonymous"].client.http.application.extensions["crowdfab.dashboard"].limiter
    assert limiter.scope == "signin" and limiter.wait_s(("alice", "127.0.0.1")) > 0
    # Another name from the same address is not held back by alice's count.
    set_password(api["bob"])
    assert sign_in(api, "bob").status_code == 201


def test_revoking_one_token_leaves_the_others(api):
    set_password(api["alice"])
    first = sign_in(api, "alice", label="printer mini-1").get_json()
    second = sign_in(api, "alice", label="printer mk4").get_json()
    me = api["alice"].member_id
    assert api["alice"].delete(f"/api/v1/members/{me}/tokens/{first['id']}").status_code == 204
    refused = as_token(api, first["token"])
    assert refused.status_code == 401 and "revoked" in refused.get_json()["message"]
    assert as_token(api, second["token"]).status_code == 200
    assert api["alice"].get("/api/v1/jobs/mine").status_code == 200
    assert api["alice"].delete(f"/api/v1/members/{me}/tokens/{first['id']}").status_code == 404


def test_only_ones_own_tokens_unless_a_manager(api):
    set_password(api["alice"])
    set_password(api["manager"])
    alices = sign_in(api, "alice").get_json()
    alice, bob, manager = api["alice"].member_id, api["bob"].member_id, api["manager"].member_id
    assert api["bob"].get(f"/api/v1/members/{alice}/tokens").status_code == 403
    assert api["bob"].delete(f"/api/v1/members/{alice}/tokens/{alices['id']}").status_code == 403
    # A token's id under another member is no token of that member's: nothing is revoked.
    assert api["bob"].delete(f"/api/v1/members/{bob}/tokens/{alices['id']}").status_code == 404
    assert as_token(api, alices["token"]).status_code == 200
    # Managers see and revoke their own, and others'.
    own = sign_in(api, "manager", label="manager's OctoPrint").get_json()
    listed = api["manager"].get(f"/api/v1/members/{manager}/tokens").get_json()["tokens"]
    assert own["id"] in [t["id"] for t in listed]
    assert api["manager"].delete(f"/api/v1/members/{alice}/tokens/{alices['id']}").status_code == 204
    assert as_token(api, alices["token"]).status_code == 401


def test_the_document_describes_the_sign_in_as_public():
    document = openapi_document()
    assert document["paths"]["/tokens"]["post"]["security"] == []


def link(api, code: str, label: str = "OctoPrint user ada on printer mini-1"):
    return api["anonymous"].post("/api/v1/tokens", json={"link_code": code, "label": label})


def test_a_link_code_signs_in_once(api, fleet):
    alice = fleet.app.store.get_member(api["alice"].member_id)
    code, expires_at = fleet.app.members.create_link_code(alice)
    assert expires_at > fleet.app.clock()
    answer = link(api, code.lower().replace("-", " "))  # typed by hand: case, spaces and dashes do not matter
    assert answer.status_code == 201, answer.get_json()
    assert as_token(api, answer.get_json()["token"]).get_json() is not None
    mine = api["anonymous"].get(
        f"/api/v1/members/{alice.id}", headers={"Authorization": f"Bearer {answer.get_json()['token']}"}
    )
    assert mine.get_json()["name"] == "alice"
    again = link(api, code)
    assert again.status_code == 401 and again.get_json()["details"] == {"reason": "used"}
    assert again.get_json()["message"] == (
        "this link code was already used to sign a device in: a code works once; "
        "make a new one on your account page"
    )


def test_a_link_code_expires_and_a_newer_one_replaces_it(api, fleet):
    alice = fleet.app.store.get_member(api["alice"].member_id)
    first, _ = fleet.app.members.create_link_code(alice)
    second, expires_at = fleet.app.members.create_link_code(alice)
    withdrawn = link(api, first)  # withdrawn by the newer code: no longer known
    assert withdrawn.status_code == 401 and withdrawn.get_json()["details"] == {"reason": "unknown"}
    real = fleet.app.clock
    fleet.app.clock = lambda: expires_at + 1
    try:
        late = link(api, second)
        assert late.status_code == 401 and late.get_json()["details"] == {"reason": "expired"}
        assert late.get_json()["message"].startswith("this link code has expired")
    finally:
        fleet.app.clock = real


def test_link_code_and_password_are_one_or_the_other(api):
    both = api["anonymous"].post(
        "/api/v1/tokens", json={"link_code": "AAAA-BBBB-CCCC", "name": "alice", "password": "x", "label": "x"}
    )
    assert both.status_code == 422 and "either" in both.get_json()["message"]
    name_only = api["anonymous"].post("/api/v1/tokens", json={"name": "alice", "label": "x"})
    assert name_only.status_code == 422 and name_only.get_json()["field"] == "password"


def test_wrong_link_codes_are_limited_per_address(api, fleet):
    for _ in range(10):
        assert link(api, "2222-3333-4444").status_code == 401
    alice = fleet.app.store.get_member(api["alice"].member_id)
    code, _ = fleet.app.members.create_link_code(alice)
    limited = link(api, code)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


def test_replacing_the_members_token_keeps_its_device_sign_ins(api):
    """POST /members/{id}/token replaces the member's own API token only: each OctoPrint user's sign-in
    keeps working, stays listed, and is revoked on its own."""
    set_password(api["alice"])
    device = sign_in(api, "alice").get_json()
    alice = api["alice"].member_id
    fresh = api["alice"].post(f"/api/v1/members/{alice}/token")
    assert fresh.status_code == 200
    token = fresh.get_json()["token"]
    assert api["alice"].get("/api/v1/jobs/mine").status_code == 401, "the old API token is revoked"
    assert as_token(api, device["token"]).status_code == 200, "the device sign-in keeps working"
    mine = {"Authorization": f"Bearer {token}"}
    listed = api["anonymous"].get(f"/api/v1/members/{alice}/tokens", headers=mine).get_json()["tokens"]
    assert [(t["label"], t["device"]) for t in listed] == [
        ("OctoPrint user ada on printer mini-1", True),
        ("reissued", False),
    ]
    revoked = api["anonymous"].delete(f"/api/v1/members/{alice}/tokens/{device['id']}", headers=mine)
    assert revoked.status_code == 204
    assert as_token(api, device["token"]).status_code == 401
    assert api["anonymous"].get("/api/v1/jobs/mine", headers=mine).status_code == 200
