"""Signing in and out, sessions, CSRF, the sign-in limiter, and passwords set through the API."""

from __future__ import annotations

from fleet.models import MemberChanges

from .conftest import PASSWORD, Browser, csrf_of


def test_anonymous_visitors_are_sent_to_sign_in_and_come_back_after(app, people):
    browser = Browser(app.test_client())

    for page in ("/", "/queue", "/submit", "/jobs/1", "/printers/x"):
        response = browser.get(page)
        assert response.status_code == 302, page
        assert response.headers["Location"] == "/signin?next=" + page
    assert browser.get("/events").status_code == 401

    response = browser.sign_in("alice")
    assert response.status_code == 303
    assert browser.get("/").status_code == 200


def test_sign_in_returns_to_a_local_page_only(app, people):
    for target, expected in (("/queue", "/queue"), ("https://evil.example/", "/"), ("//evil.example", "/")):
        browser = Browser(app.test_client())
        token = browser.csrf()
        response = browser.http.post(
            "/signin", data={"name": "alice", "password": PASSWORD, "csrf": token, "next": target}
        )
        assert response.headers["Location"] == expected


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(app, people):
    browser = Browser(app.test_client())
    wrong = browser.sign_in("alice", "not the password")
    unknown = browser.sign_in("nobody", PASSWORD)

    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong name or password." in wrong.get_data(as_text=True)
    assert "Wrong name or password." in unknown.get_data(as_text=True)
    assert browser.get("/").status_code == 302


def test_the_session_cookie_is_httponly_and_samesite(app, people):
    browser = Browser(app.test_client())
    response = browser.sign_in("alice")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie

    secure = Browser(app.test_client())
    token = csrf_of(secure.http.get("/signin", base_url="https://fleet.example").get_data(as_text=True))
    response = secure.http.post(
        "/signin",
        data={"name": "alice", "password": PASSWORD, "csrf": token},
        base_url="https://fleet.example",
    )
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_post_without_the_csrf_token_is_refused(browsers, people):
    alice = browsers["alice"]
    for url in ("/signout", "/submit", "/language", "/printers/mk4/bed-cleared", "/jobs/1/cancel"):
        assert alice.http.post(url, data={}).status_code == 400, url
        assert alice.http.post(url, data={"csrf": "forged"}).status_code == 400, url
    # Still signed in: the refused sign-out did nothing.
    assert alice.get("/").status_code == 200
    assert (
        browsers["anonymous"].http.post("/signin", data={"name": "alice", "password": PASSWORD}).status_code
        == 400
    )


def test_signing_out_ends_the_session(browsers):
    alice = browsers["alice"]
    assert alice.post("/signout").status_code == 303
    assert alice.get("/").status_code == 302


def test_too_many_failures_pause_sign_in_for_that_name(app, people):
    browser = Browser(app.test_client())
    for _ in range(5):
        assert browser.sign_in("alice", "guess").status_code == 401

    refused = browser.sign_in("alice", PASSWORD)
    assert refused.status_code == 429
    assert "Too many attempts" in refused.get_data(as_text=True)
    # Another name from the same address is not held up.
    assert browser.sign_in("bob").status_code == 303


def test_a_member_sets_their_password_through_the_api_and_old_sessions_end(clients, app, fleet):
    alice = clients["alice"]
    response = alice.put(f"/api/v1/members/{alice.member_id}/password", json={"password": "first password"})
    assert response.status_code == 204
    web = Browser(app.test_client())
    assert web.sign_in("alice", "first password").status_code == 303

    assert (
        clients["bob"]
        .put(f"/api/v1/members/{alice.member_id}/password", json={"password": "bob's choice!"})
        .status_code
        == 403
    )
    assert (
        alice.put(f"/api/v1/members/{alice.member_id}/password", json={"password": "short"}).status_code
        == 422
    )
    manager = clients["manager"]
    assert (
        manager.put(
            f"/api/v1/members/{alice.member_id}/password", json={"password": "reset by manager"}
        ).status_code
        == 204
    )

    assert web.get("/").status_code == 302  # the session signed in with the old password is over
    assert web.sign_in("alice", "reset by manager").status_code == 303


def test_a_deactivated_member_is_signed_out(browsers, fleet, people):
    fleet.app.members.update_member(people["manager"], people["alice"].id, MemberChanges(active=False))
    assert browsers["alice"].get("/").status_code == 302
    assert Browser(browsers["alice"].http).sign_in("alice").status_code == 401


def test_a_member_changes_their_own_password_on_the_account_page(browsers, app):
    alice = browsers["alice"]
    wrong = alice.post("/account", {"current": "nope", "password": "new password", "again": "new password"})
    assert wrong.status_code == 422
    done = alice.post("/account", {"current": PASSWORD, "password": "new password", "again": "new password"})
    assert done.status_code == 303
    assert alice.get("/").status_code == 200  # this session carries on
    assert Browser(app.test_client()).sign_in("alice", "new password").status_code == 303
