"""Fixtures shared by the whole suite: the sample G-code, a fleet on a temporary data dir, API clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.brokers import TestBroker
from tests.store.backends import BACKEND_PARAMS, REQUIRE_POSTGRES, PostgresServer, sqlite_url

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def agent_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own ``crowdfab-agent`` folder (what it learns of a serial link is kept there), so no
    test writes into the home directory and none inherits another's remembered window."""
    home = tmp_path_factory.mktemp("agent-home")
    monkeypatch.setenv("CROWDFAB_AGENT_DIR", str(home))
    return home


def shared_gcode_dir() -> Path:
    """Real slicer output, kept beside the checkout (never copied into the repository)."""
    env = os.environ.get("CROWDFAB_SHARED_GCODE")
    return Path(env) if env else REPO.parent / "shared" / "gcode"


@pytest.fixture(scope="session")
def sample_gcode() -> Path:
    folder = shared_gcode_dir()
    if not (folder / "benchy_prusaslicer.gcode").is_file():
        pytest.skip(f"the shared slicer samples are not at {folder} (set CROWDFAB_SHARED_GCODE)")
    return folder


@dataclass
class Client:
    """A Flask test client that sends one member's token."""

    http: object
    token: str | None
    member_id: int | None = None

    def _headers(self, extra: dict | None = None) -> dict:
        headers = dict(extra or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def get(self, url: str, **kw):
        return self.http.get(url, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, url: str, **kw):
        return self.http.post(url, headers=self._headers(kw.pop("headers", None)), **kw)

    def put(self, url: str, **kw):
        return self.http.put(url, headers=self._headers(kw.pop("headers", None)), **kw)

    def patch(self, url: str, **kw):
        return self.http.patch(url, headers=self._headers(kw.pop("headers", None)), **kw)

    def delete(self, url: str, **kw):
        return self.http.delete(url, headers=self._headers(kw.pop("headers", None)), **kw)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[object]:
    from fleet.config import FleetConfig
    from fleet.server import Fleet

    opened = Fleet.open(FleetConfig(data_dir=tmp_path / "data"))
    yield opened
    opened.close()


@pytest.fixture
def app(fleet):
    from fleet.api import create_app

    application = create_app(fleet.app)
    application.testing = True
    return application


@pytest.fixture
def clients(app, fleet) -> dict[str, Client]:
    """Clients for an anonymous caller, a manager and two members (alice, bob)."""
    from fleet.models import Role

    http = app.test_client()
    out = {"anonymous": Client(http, None)}
    for name, role in (("manager", Role.MANAGER), ("alice", Role.MEMBER), ("bob", Role.MEMBER)):
        member, token = fleet.app.members.add_member(name, role)
        out[name] = Client(http, token, member.id)
    return out


# -- databases on both backends (tests/store and the tests that share a database) --------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server on this machine; its tests are skipped (with the reason) if it is absent."""
    server = PostgresServer()
    reason = server.unavailable_reason()
    if reason is not None:
        server.close()
        if REQUIRE_POSTGRES:
            pytest.fail(reason)
        pytest.skip(reason)
    yield server
    server.close()


@pytest.fixture(params=BACKEND_PARAMS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all (a new PostgreSQL database for each test)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[TestBroker]:
    """A private Mosquitto (anonymous access) on a free port, closed after the test whatever happens;
    it outlives every fleet process the test starts."""
    broker = TestBroker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.close()
