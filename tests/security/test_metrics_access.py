"""Who may scrape /metrics: the operator's token, the operator's networks, or both; nobody by default."""

from __future__ import annotations

import pytest

from fleet.api import create_app
from fleet.config import MetricsAccess

TOKEN = "scrape-" + "k" * 32
SCRAPER = "10.1.2.3"


def scraper(fleet, access: MetricsAccess, **config):
    app = create_app(fleet.app, {"CROWDFAB_METRICS_ACCESS": access, **config})
    app.testing = True
    return app.test_client()


def scrape(client, *, address: str = SCRAPER, token: str | None = None, forwarded_for: str | None = None):
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    return client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": address})


@pytest.mark.parametrize(
    ("token", "allow", "problem"),
    [
        ("short", None, "at least 16 characters"),
        ("a" * 20 + " b", None, "without spaces"),
        ("é" * 20, None, "printable ASCII"),
        (None, "10.0.0.0/8, lab-network", "'lab-network' in the metrics allow-list"),
        (None, ["10.0.0.300"], "'10.0.0.300'"),
    ],
)
def test_a_weak_token_or_a_bad_network_is_refused_by_name(token, allow, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        MetricsAccess.of(token, allow)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("10.1.2.3", True),
        ("10.255.0.1", True),
        ("192.168.1.20", True),
        ("192.168.1.21", False),
        ("::ffff:10.9.9.9", True),  # an IPv4 client on a dual-stack socket
        ("fd00::1", True),
        ("127.0.0.1", False),
        ("not an address", False),
        ("", False),
    ],
)
def test_the_allow_list_matches_networks_and_addresses(address: str, allowed: bool) -> None:
    access = MetricsAccess.of(None, "10.0.0.0/8 192.168.1.20,fd00::/8")
    assert access.allows_address(address) is allowed


def test_the_token_never_shows_in_the_configuration_repr() -> None:
    assert TOKEN not in repr(MetricsAccess.of(TOKEN, "10.0.0.0/8"))


def test_scraping_is_off_until_the_operator_chooses(fleet) -> None:
    response = scrape(scraper(fleet, MetricsAccess()), token=TOKEN)
    assert response.status_code == 404
    assert "--metrics-token-file or --metrics-allow" in response.get_json()["message"]


def test_a_scrape_without_the_token_or_with_another_is_refused(fleet) -> None:
    client = scraper(fleet, MetricsAccess.of(TOKEN))
    refused = scrape(client)
    assert refused.status_code == 401
    assert refused.get_json()["error"] == "unauthorized"
    assert "crowdfab_" not in refused.get_data(as_text=True)
    assert scrape(client, token=TOKEN[:-1] + "x").status_code == 401
    assert scrape(client, token="cfm_" + "a" * 40).status_code == 401  # a member's token is not it
    answered = scrape(client, token=TOKEN)
    assert answered.status_code == 200
    assert "crowdfab_printers" in answered.get_data(as_text=True)


def test_wrong_scrape_tokens_are_guesses_and_the_address_is_slowed_down(fleet) -> None:
    client = scraper(fleet, MetricsAccess.of(TOKEN), CROWDFAB_TOKEN_ATTEMPTS=3)
    assert [scrape(client, token=f"guess-{n:020d}").status_code for n in range(3)] == [401] * 3
    limited = scrape(client, token=TOKEN)  # while limited, not even the right token is looked at
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    assert scrape(client, address="10.1.2.4", token=TOKEN).status_code == 200


def test_the_allow_list_refuses_other_addresses(fleet) -> None:
    client = scraper(fleet, MetricsAccess.of(None, "10.0.0.0/8"))
    assert scrape(client, address="10.1.2.3").status_code == 200
    refused = scrape(client, address="203.0.113.9")
    assert refused.status_code == 403
    assert "203.0.113.9" in refused.get_json()["message"]


def test_with_both_a_scraper_needs_the_network_and_the_token(fleet) -> None:
    client = scraper(fleet, MetricsAccess.of(TOKEN, "10.0.0.0/8"))
    assert scrape(client, address="10.1.2.3").status_code == 401
    assert scrape(client, address="203.0.113.9", token=TOKEN).status_code == 403
    assert scrape(client, address="10.1.2.3", token=TOKEN).status_code == 200


@pytest.mark.parametrize("proxies", [0, 1])
def test_behind_a_proxy_the_allow_list_sees_the_client_only_when_the_proxy_is_trusted(
    fleet, proxies: int
) -> None:
    """Without trusted proxies a client's X-Forwarded-For is ignored (it cannot pose as a listed
    address); behind a trusted proxy the address checked is the one the proxy reports, not the proxy's."""
    client = scraper(fleet, MetricsAccess.of(None, "10.0.0.0/8"), CROWDFAB_TRUSTED_PROXIES=proxies)
    forged = scrape(client, address="203.0.113.9", forwarded_for="10.1.2.3")
    assert forged.status_code == (200 if proxies else 403)
    proxied = scrape(client, address="10.0.0.2", forwarded_for="203.0.113.9")
    assert proxied.status_code == (403 if proxies else 200)
