"""Guessing is slowed down: sign-in, enrollment codes and bearer tokens, counted per remote address.

Each test runs against the real waitress server (``fleet.server.make_server``) with the limits it
ships with, and sends from two loopback addresses (127.0.0.1 and 127.0.0.2), so one address's
failures are seen not to touch the other.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from fleet.api import LIMIT_DEFAULTS, create_app
from fleet.models import Role
from fleet.web import DEFAULTS as WEB_DEFAULTS

from ..brokers import wait_until
from .conftest import CAPS, PASSWORD, LiveServer, csrf_of, db_state, enroll_request

ENROLL = "/api/v1/printers/enroll"
ATTACKER, NEIGHBOUR = "127.0.0.1", "127.0.0.2"


class FromAddress(HTTPAdapter):
    """Connects from a chosen local address (any of 127.0.0.0/8 is this machine)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def client(source: str) -> requests.Session:
    session = requests.Session()
    session.mount("http://", FromAddress(source))
    return session


def assert_limited(response: requests.Response, what: str, window_s: float) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"] == "rate_limited"
    assert what in body["message"] and "wait" in body["message"], body["message"]
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= window_s
    assert body["details"]["retry_after_s"] == retry_after


def test_sign_in_attempts_are_limited_per_name_and_address(live_server: LiveServer) -> None:
    service = live_server.fleet.app
    member, _ = service.members.add_member("alice", Role.MEMBER)
    service.identity.set_password(member, member.id, PASSWORD)
    attempts = WEB_DEFAULTS["CROWDFAB_SIGNIN_ATTEMPTS"]

    def sign_in(browser: requests.Session, password: str) -> requests.Response:
        csrf = csrf_of(browser.get(f"{live_server.url}/signin").text)
        form = {"name": "alice", "password": password, "csrf": csrf}
        return browser.post(f"{live_server.url}/signin", data=form, allow_redirects=False)

    attacker = client(ATTACKER)
    for _ in range(attempts):
        assert sign_in(attacker, "not the password").status_code == 401
    refused = sign_in(attacker, PASSWORD)  # the right password no longer gets in from there
    assert refused.status_code == 429
    assert "Too many attempts" in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= WEB_DEFAULTS["CROWDFAB_SIGNIN_WINDOW_S"]
    assert attacker.get(f"{live_server.url}/", allow_redirects=False).status_code == 302  # still signed out

    neighbour = client(NEIGHBOUR)
    signed_in = sign_in(neighbour, PASSWORD)
    assert signed_in.status_code == 303, "another address's failures blocked a good sign-in"
    assert neighbour.get(f"{live_server.url}/", allow_redirects=False).status_code == 200


def test_wrong_enrollment_codes_are_limited_per_address(live_server: LiveServer) -> None:
    service = live_server.fleet.app
    attempts, window = LIMIT_DEFAULTS["CROWDFAB_ENROLL_ATTEMPTS"], LIMIT_DEFAULTS["CROWDFAB_ENROLL_WINDOW_S"]
    code, _ = service.enrollment.create_enrollment_code(None)
    attacker = client(ATTACKER)
    for n in range(attempts):
        guess = {"code": f"2222-3333-{n + 4444}", "name": "guess", "capabilities": CAPS}
        assert attacker.post(live_server.url + ENROLL, json=guess).status_code == 401

    before = db_state(live_server.fleet)
    right = {"code": code, "name": "MK4", "capabilities": CAPS}
    assert_limited(attacker.post(live_server.url + ENROLL, json=right), "enrollment codes", window)
    assert db_state(live_server.fleet) == before, "a limited attempt spent the code or enrolled a printer"

    enrolled = client(NEIGHBOUR).post(live_server.url + ENROLL, json=right)
    assert enrolled.status_code == 201, "another address's failures blocked a valid code"
    assert enrolled.json()["printer_id"] == "mk4"


def test_failed_bearer_tokens_are_limited_per_address(live_server: LiveServer) -> None:
    service = live_server.fleet.app
    _, token = service.members.add_member("alice", Role.MEMBER)
    code = service.enrollment.create_enrollment_code(None)[0]
    printer_token = service.enrollment.enroll(enroll_request(code, "MK4")).answer.token
    attempts, window = LIMIT_DEFAULTS["CROWDFAB_TOKEN_ATTEMPTS"], LIMIT_DEFAULTS["CROWDFAB_TOKEN_WINDOW_S"]
    me, file = f"{live_server.url}/api/v1/me", f"{live_server.url}/api/v1/printers/mk4/jobs/1/file"
    attacker = client(ATTACKER)

    # A request without a token is no guess: any number of them leave the address alone.
    for _ in range(attempts + 5):
        assert attacker.get(me).status_code == 401
    assert attacker.get(me, headers={"Authorization": f"Bearer {token}"}).status_code == 200

    # Member and printer tokens count together: both are bearer tokens guessed the same way.
    for n in range(attempts):
        bad = {"Authorization": f"Bearer cf{'mp'[n % 2]}_guess{n}"}
        assert attacker.get(file if n % 2 else me, headers=bad).status_code == 401
    assert_limited(
        attacker.get(me, headers={"Authorization": "Bearer cfm_one-more"}), "invalid API token", window
    )
    # While limited, a valid token is not even looked at: a lucky guess would tell nothing.
    assert_limited(
        attacker.get(me, headers={"Authorization": f"Bearer {token}"}), "invalid API token", window
    )
    assert_limited(
        attacker.get(file, headers={"Authorization": f"Bearer {printer_token}"}), "invalid API token", window
    )

    neighbour = client(NEIGHBOUR)
    answer = neighbour.get(me, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json()["name"] == "alice"


@pytest.mark.parametrize("kind", ["token", "enroll"])
def test_an_address_may_try_again_once_its_window_has_passed(small_fleet: Any, kind: str) -> None:
    """With a short window (the config keys the lab can set), the limit lifts by itself."""
    app = create_app(
        small_fleet.app,
        {
            "CROWDFAB_TOKEN_ATTEMPTS": 2,
            "CROWDFAB_TOKEN_WINDOW_S": 1.0,
            "CROWDFAB_ENROLL_ATTEMPTS": 2,
            "CROWDFAB_ENROLL_WINDOW_S": 1.0,
        },
    )
    http = app.test_client()
    _, token = small_fleet.app.members.add_member("alice", Role.MEMBER)

    def attempt(good: bool) -> int:
        if kind == "token":
            header = {"Authorization": f"Bearer {token if good else 'cfm_wrong'}"}
            return int(http.get("/api/v1/me", headers=header).status_code)
        code = small_fleet.app.enrollment.create_enrollment_code(None)[0] if good else "2222-2222-2222"
        return int(http.post(ENROLL, json={"code": code, "name": "MK4", "capabilities": CAPS}).status_code)

    assert [attempt(False), attempt(False)] == [401, 401]
    assert attempt(True) == 429
    wait_until(lambda: attempt(True) != 429, timeout=10, what="the limit to lift after its window")
    assert attempt(True) in (200, 201)
