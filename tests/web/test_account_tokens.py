"""The account page: a member's tokens listed by name (never the token), revoked one at a time, link codes."""

from __future__ import annotations

import re

from fleet.auth import hash_token

from .conftest import PASSWORD


def test_tokens_are_listed_by_name_and_revoked_one_at_a_time(fleet, browsers, people):
    alice = people["alice"]
    kept = fleet.app.members.issue_named_token(alice, "OctoPrint user ada on printer mini-1")
    other = fleet.app.members.issue_named_token(alice, "laptop")
    page = browsers["alice"].get("/account").get_data(as_text=True)
    assert "OctoPrint user ada on printer mini-1" in page and "laptop" in page
    # The member's own API token is told apart: replacing it leaves these devices signed in.
    assert page.count("your API token: replacing it leaves the devices signed in") == 1
    assert kept not in page and other not in page
    # bob's page lists none of alice's, and bob cannot revoke hers through his own form.
    assert "laptop" not in browsers["bob"].get("/account").get_data(as_text=True)
    refused = browsers["bob"].post("/account/tokens/revoke", {"token": hash_token(other)})
    assert refused.status_code == 303
    assert fleet.app.identity.authenticate(other).id == alice.id

    done = browsers["alice"].post(
        "/account/tokens/revoke", {"token": hash_token(other)}, follow_redirects=True
    )
    text = done.get_data(as_text=True)
    assert "The token is revoked" in text and "laptop" not in text
    assert fleet.app.identity.authenticate(kept).id == alice.id


def test_a_revoke_without_the_pages_csrf_token_is_refused(fleet, browsers, people):
    token = fleet.app.members.issue_named_token(people["alice"], "laptop")
    sent = browsers["alice"].http.post("/account/tokens/revoke", data={"token": hash_token(token)})
    assert sent.status_code in (400, 403)
    assert fleet.app.identity.authenticate(token).id == people["alice"].id


def test_a_link_code_is_shown_once_and_signs_a_device_in(fleet, browsers, people, app):
    page = browsers["alice"].post("/account/link-code").get_data(as_text=True)
    code = re.search(r'<code id="link-code">([A-Z0-9-]+)</code>', page).group(1)
    assert code not in browsers["alice"].get("/account").get_data(as_text=True)
    http = app.test_client()
    answer = http.post("/api/v1/tokens", json={"link_code": code, "label": "OctoPrint user ada on mini-1"})
    assert answer.status_code == 201
    listed = browsers["alice"].get("/account").get_data(as_text=True)
    assert "OctoPrint user ada on mini-1" in listed and answer.get_json()["token"] not in listed


def test_the_page_speaks_french(browsers):
    browsers["alice"].post("/language", {"lang": "fr"})
    page = browsers["alice"].post("/account/link-code").get_data(as_text=True)
    assert "Appareils connectés" in page and "il sert une fois" in page
    assert PASSWORD not in page
