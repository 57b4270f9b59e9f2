"""X-Forwarded-For is believed only from configured proxies: a client cannot pose as other addresses."""

from __future__ import annotations

import pytest

from fleet.api import create_app

BAD = {"Authorization": "Bearer not-a-real-token"}
PROXY = "10.0.0.2"  # the address the fleet sees: the reverse proxy's


def limited_app(fleet, proxies: int):
    app = create_app(
        fleet.app,
        {"CROWDFAB_TOKEN_ATTEMPTS": 3, "CROWDFAB_TOKEN_WINDOW_S": 300.0, "CROWDFAB_TRUSTED_PROXIES": proxies},
    )
    app.testing = True
    return app.test_client()


def guess(client, forwarded_for: str | None) -> int:
    headers = dict(BAD)
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return client.get("/api/v1/me", headers=headers, environ_base={"REMOTE_ADDR": PROXY}).status_code


def test_without_trusted_proxies_a_forged_header_does_not_escape_the_limit(fleet) -> None:
    client = limited_app(fleet, proxies=0)
    assert [guess(client, f"198.51.100.{n}") for n in range(3)] == [401, 401, 401]
    assert guess(client, "198.51.100.99") == 429  # a new forged address is still the same client


def test_behind_a_trusted_proxy_each_client_is_counted_on_its_own(fleet) -> None:
    client = limited_app(fleet, proxies=1)
    assert [guess(client, "203.0.113.5") for _ in range(3)] == [401, 401, 401]
    assert guess(client, "203.0.113.5") == 429
    assert guess(client, "203.0.113.6") == 401  # another member behind the same proxy is not blocked
    # Only the address the trusted proxy appended counts: a client's own prefix changes nothing.
    assert guess(client, "192.0.2.1, 203.0.113.5") == 429


@pytest.mark.parametrize("proxies", [0, 1])
def test_the_scheme_is_taken_from_the_proxy_only_when_trusted(fleet, proxies: int) -> None:
    """Behind a TLS-terminating proxy the session cookie is marked Secure; a client's header alone
    does not decide it."""
    app = create_app(fleet.app, {"CROWDFAB_TRUSTED_PROXIES": proxies, "SECRET_KEY": "k" * 32})
    client = app.test_client()
    response = client.get(
        "/signin", headers={"X-Forwarded-Proto": "https"}, environ_base={"REMOTE_ADDR": PROXY}
    )
    cookie = response.headers.get("Set-Cookie", "")
    assert cookie.startswith("crowdfab="), cookie  # the session, with its CSRF token
    assert ("Secure" in cookie) is (proxies == 1)
