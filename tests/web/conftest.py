"""Dashboard fixtures: members with passwords, a printer, and signed-in browser-like test clients."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from fleet.geometry import Box
from fleet.models import Member, NewPrinter, PrinterSpec, Role

PASSWORD = "correct horse battery"
VOLUME = {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 200, "max_y": 200, "max_z": 200}
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


@dataclass
class Browser:
    """A Flask test client with its own cookies, signed in as one member (or anonymous)."""

    http: object
    member: Member | None = None

    def csrf(self, page: str = "/signin") -> str:
        return csrf_of(self.http.get(page).get_data(as_text=True))

    def sign_in(self, name: str, password: str = PASSWORD, **kw):
        token = self.csrf("/signin")
        return self.http.post("/signin", data={"name": name, "password": password, "csrf": token}, **kw)

    def post(self, url: str, data: dict | None = None, **kw):
        """A form POST with this session's CSRF token, as the page's form would send it."""
        return self.http.post(url, data={"csrf": self.csrf("/account"), **(data or {})}, **kw)

    def get(self, url: str, **kw):
        return self.http.get(url, **kw)


@pytest.fixture
def people(fleet) -> dict[str, Member]:
    """A manager and two members (alice, bob), each with PASSWORD."""
    out = {}
    for name, role in (("manager", Role.MANAGER), ("alice", Role.MEMBER), ("bob", Role.MEMBER)):
        member, _ = fleet.app.members.add_member(name, role)
        fleet.app.identity.set_password(member, member.id, PASSWORD)
        out[name] = member
    return out


@pytest.fixture
def browsers(app, people) -> dict[str, Browser]:
    """An anonymous browser and one signed in per person."""
    out = {"anonymous": Browser(app.test_client())}
    for name, member in people.items():
        browser = Browser(app.test_client(), member)
        assert browser.sign_in(name).status_code == 303
        out[name] = browser
    return out


@pytest.fixture
def printer(fleet, people):
    return fleet.app.printers.add_printer(
        people["manager"], NewPrinter("mk4", "Prusa MK4", PrinterSpec(Box.from_dict(VOLUME), material="PLA"))
    )
