"""The failed-attempt limits are counted in the database: fleet processes on one database count
together, and a restart forgets nothing. On SQLite and on PostgreSQL.

A "process" here is what a fleet process has of its own: its engine (its connections), its service
and its Flask app, opened on the shared database; a restart closes them all and opens new ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from fleet.api import LIMIT_DEFAULTS, create_app
from fleet.app import FleetApp, build
from fleet.config import FleetConfig
from fleet.errors import Unavailable
from fleet.http_protocol import BrokerAddress
from fleet.models import Role
from fleet.server import Fleet, free_port
from fleet.store import BlobStore, Store, open_store
from fleet.store.engine import make_engine
from fleet.store.schema import failed_attempts
from fleet.web import DEFAULTS as WEB_DEFAULTS
from fleet.web.limiter import StoredLimiter, key_text

from .conftest import CAPS, PASSWORD, StrictClock, csrf_of

ENROLL = "/api/v1/printers/enroll"
ATTACKER, NEIGHBOUR = "10.0.0.66", "10.0.0.7"
#: Each kind of attempt: its scope, its limit and window as shipped, and the status of a good attempt.
KINDS = {
    "signin": (WEB_DEFAULTS["CROWDFAB_SIGNIN_ATTEMPTS"], WEB_DEFAULTS["CROWDFAB_SIGNIN_WINDOW_S"], 303),
    "enroll": (LIMIT_DEFAULTS["CROWDFAB_ENROLL_ATTEMPTS"], LIMIT_DEFAULTS["CROWDFAB_ENROLL_WINDOW_S"], 201),
    "token": (LIMIT_DEFAULTS["CROWDFAB_TOKEN_ATTEMPTS"], LIMIT_DEFAULTS["CROWDFAB_TOKEN_WINDOW_S"], 200),
}
T0 = 1_700_000_000.0


@pytest.fixture
def store(fresh_url: str, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(fresh_url, tmp_path / "data")
    yield opened
    opened.close()


def rows_in(store: Store, scope: str | None = None) -> int:
    query = select(func.count()).select_from(failed_attempts)
    if scope is not None:
        query = query.where(failed_attempts.c.scope == scope)
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


# -- the limiter, with a clock of the test's --------------------------------------------------------


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_key_is_limited_after_its_attempts_until_the_oldest_ages_out(store: Store) -> None:
    clock = Clock()
    limiter = StoredLimiter(store, "signin", 3, 60.0, clock=clock)
    limiter.failed("k")
    clock.now = T0 + 10
    limiter.failed("k")
    assert limiter.wait_s("k") == 0.0  # two of three

    clock.now = T0 + 20
    limiter.failed("k")
    clock.now = T0 + 25
    assert limiter.wait_s("k") == pytest.approx(T0 + 60 - clock.now)  # the oldest + the window - now

    clock.now = T0 + 60  # the oldest is exactly a window old: it no longer counts
    assert limiter.wait_s("k") == 0.0
    limiter.failed("k")  # T0 + 10, T0 + 20, T0 + 60
    assert limiter.wait_s("k") == pytest.approx(10.0)
    clock.now = T0 + 70
    assert limiter.wait_s("k") == 0.0


def test_success_clears_the_key(store: Store) -> None:
    clock = Clock()
    limiter = StoredLimiter(store, "signin", 2, 60.0, clock=clock)
    limiter.failed("k")
    limiter.failed("k")
    assert limiter.wait_s("k") == pytest.approx(60.0)

    limiter.succeeded("k")

    assert limiter.wait_s("k") == 0.0
    limiter.failed("k")
    assert limiter.wait_s("k") == 0.0, "a failure from before the success still counted"


def test_scopes_and_keys_do_not_mix(store: Store) -> None:
    clock = Clock()
    signin = StoredLimiter(store, "signin", 2, 60.0, clock=clock)
    tokens = StoredLimiter(store, "token", 2, 60.0, clock=clock)
    for _ in range(2):
        signin.failed(("alice", ATTACKER))
        tokens.failed(ATTACKER)

    assert signin.wait_s(("alice", ATTACKER)) > 0
    assert signin.wait_s(("alice", NEIGHBOUR)) == 0.0
    assert signin.wait_s(("bob", ATTACKER)) == 0.0
    assert tokens.wait_s(ATTACKER) > 0
    assert tokens.wait_s(NEIGHBOUR) == 0.0
    tokens.succeeded(ATTACKER)
    assert signin.wait_s(("alice", ATTACKER)) > 0, "a success in one scope cleared another"


def test_limiters_on_one_database_count_together(store: Store) -> None:
    clock = Clock()
    one, other = (StoredLimiter(store, "token", 4, 60.0, clock=clock) for _ in range(2))
    for limiter in (one, other, one, other):
        assert limiter.wait_s(ATTACKER) == 0.0
        limiter.failed(ATTACKER)

    assert one.wait_s(ATTACKER) == other.wait_s(ATTACKER) == pytest.approx(60.0)


def test_long_keys_are_bounded_and_still_counted_apart(store: Store) -> None:
    clock = Clock()
    limiter = StoredLimiter(store, "signin", 2, 60.0, clock=clock)
    long_name, other_name = "a" * 100_000, "a" * 99_999 + "b"
    for _ in range(2):
        limiter.failed((long_name, ATTACKER))

    assert limiter.wait_s((long_name, ATTACKER)) > 0
    assert limiter.wait_s((other_name, ATTACKER)) == 0.0
    with store.engine.connect() as conn:
        longest = conn.execute(select(func.max(func.length(failed_attempts.c.key)))).scalar_one()
    assert longest == len("sha256:") + 64


def test_tuple_keys_are_unambiguous() -> None:
    assert key_text(("a,b", "c")) != key_text(("a", "b,c"))
    assert key_text(("alice", None)) == '["alice",null]'
    assert key_text("10.0.0.1") == "10.0.0.1"


def test_old_failures_are_pruned_as_failures_come_at_most_once_a_minute(store: Store) -> None:
    clock = Clock()
    limiter = StoredLimiter(store, "token", 5, 100.0, clock=clock)
    other_scope = StoredLimiter(store, "enroll", 5, 100.0, clock=Clock(T0 - 1000))
    other_scope.failed("x")  # long aged out, but another scope's: this limiter leaves it

    limiter.failed("a")  # prunes (its first failure): nothing is old yet
    clock.now = T0 + 50
    limiter.failed("c")
    assert rows_in(store, "token") == 2

    clock.now = T0 + 101  # a (T0) aged out, and a minute has passed since the last pruning
    limiter.failed("b")
    assert rows_in(store, "token") == 2  # c and b

    clock.now = T0 + 155  # c (T0 + 50) aged out, but only 54 s since the last pruning
    limiter.failed("d")
    assert rows_in(store, "token") == 3

    clock.now = T0 + 161
    limiter.failed("e")
    assert rows_in(store, "token") == 3  # b, d and e
    assert rows_in(store, "enroll") == 1


def test_a_limiter_allows_at_least_one_attempt(store: Store) -> None:
    with pytest.raises(ValueError, match="at least one"):
        StoredLimiter(store, "token", 0, 60.0)


# -- fleet processes sharing one database -----------------------------------------------------------


class Process:
    """A fleet process on the shared database: its own engine, service and app."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.fleet = Fleet.open(FleetConfig(data_dir=data_dir, database_url=database_url))
        self.fleet.app.enrollment.node_mqtt = BrokerAddress("fleet.test", 18830, tls=False)
        self.fleet.app.clock = StrictClock()
        self.app = create_app(self.fleet.app, {"SECRET_KEY": "k" * 32})

    @property
    def service(self) -> FleetApp:
        return self.fleet.app

    def client(self, address: str) -> FlaskClient:
        http = self.app.test_client()
        http.environ_base["REMOTE_ADDR"] = address
        return http

    def attempt(self, kind: str, address: str, *, good: bool, n: int = 0, token: str = "") -> Any:
        """One attempt of ``kind`` from ``address``: right (``good``) or a wrong guess."""
        http = self.client(address)
        if kind == "token":
            sent = token if good else f"cfm_guess{n}"
            return http.get("/api/v1/me", headers={"Authorization": f"Bearer {sent}"})
        if kind == "enroll":
            code = (
                self.service.enrollment.create_enrollment_code(None)[0] if good else f"2222-3333-{n + 4444}"
            )
            return http.post(ENROLL, json={"code": code, "name": "MK4", "capabilities": CAPS})
        csrf = csrf_of(http.get("/signin").get_data(as_text=True))
        form = {"name": "alice", "password": PASSWORD if good else "not the password", "csrf": csrf}
        return http.post("/signin", data=form)

    def close(self) -> None:
        self.fleet.close()


def assert_refused(response: Any, kind: str, window_s: float) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)[:300]
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= math.ceil(window_s)
    if kind == "signin":
        assert "Too many attempts" in response.get_data(as_text=True)
    else:
        body = response.get_json()
        assert body["error"] == "rate_limited"
        assert body["details"]["retry_after_s"] == retry_after


@pytest.mark.parametrize("kind", list(KINDS))
def test_failures_spread_over_processes_count_together_and_outlive_a_restart(
    fresh_url: str, tmp_path: Path, kind: str
) -> None:
    attempts, window_s, allowed = KINDS[kind]
    first, second = Process(fresh_url, tmp_path / "one"), Process(fresh_url, tmp_path / "two")
    try:
        alice, token = first.service.members.add_member("alice", Role.MEMBER)
        first.service.identity.set_password(alice, alice.id, PASSWORD)

        # Taking turns: neither process sees the limit's worth of failures by itself.
        for n in range(attempts):
            process = (first, second)[n % 2]
            assert process.attempt(kind, ATTACKER, good=False, n=n).status_code == 401
        counted = rows_in(first.fleet.store)

        for process in (first, second):  # the right secret no longer gets in, from either process
            assert_refused(process.attempt(kind, ATTACKER, good=True, token=token), kind, window_s)
            assert_refused(process.attempt(kind, ATTACKER, good=False, n=99), kind, window_s)
        assert rows_in(first.fleet.store) == counted, "a limited attempt was written down"

        answer = second.attempt(kind, NEIGHBOUR, good=True, token=token)
        assert answer.status_code == allowed, "another address's failures blocked a good attempt"
    finally:
        first.close()
        second.close()

    restarted = Process(fresh_url, tmp_path / "three")
    try:
        assert_refused(restarted.attempt(kind, ATTACKER, good=True, token=token), kind, window_s)
    finally:
        restarted.close()


def test_a_sign_in_with_a_huge_name_is_stored_bounded(fresh_url: str, tmp_path: Path) -> None:
    process = Process(fresh_url, tmp_path / "one")
    try:
        http = process.client(ATTACKER)
        csrf = csrf_of(http.get("/signin").get_data(as_text=True))
        form = {"name": "x" * 200_000, "password": "guess", "csrf": csrf}
        assert http.post("/signin", data=form).status_code == 401
        with process.fleet.store.engine.connect() as conn:
            keys = conn.execute(select(failed_attempts.c.scope, failed_attempts.c.key)).all()
        assert [(scope, len(key)) for scope, key in keys] == [("signin", len("sha256:") + 64)]
    finally:
        process.close()


# -- a database that cannot be reached ------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def unreachable_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store whose database is not there: a SQLite file in a missing directory, or no PostgreSQL
    listening on the port."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gone' / 'fleet.db'}"
    else:
        url = f"postgresql+psycopg://crowdfab@127.0.0.1:{free_port()}/crowdfab"
    store = Store(make_engine(url, busy_timeout=1.0))
    yield store
    store.close()


def test_the_limiter_answers_unavailable_when_the_database_cannot_be_reached(
    unreachable_store: Store,
) -> None:
    limiter = StoredLimiter(unreachable_store, "signin", 5, 300.0)
    with pytest.raises(Unavailable, match="database is unavailable"):
        limiter.wait_s(("alice", ATTACKER))
    with pytest.raises(Unavailable, match="database is unavailable"):
        limiter.failed(("alice", ATTACKER))
    with pytest.raises(Unavailable, match="database is unavailable"):
        limiter.succeeded(("alice", ATTACKER))


def test_attempts_without_a_database_are_the_usual_503(unreachable_store: Store, tmp_path: Path) -> None:
    service = build(unreachable_store, BlobStore(tmp_path / "files"))
    app = create_app(service, {"SECRET_KEY": "k" * 32})
    http = app.test_client()

    for response in (
        http.get("/api/v1/me", headers={"Authorization": "Bearer cfm_guess"}),
        http.post(ENROLL, json={"code": "2222-3333-4444", "name": "MK4", "capabilities": CAPS}),
    ):
        assert response.status_code == 503, response.get_data(as_text=True)
        assert response.get_json()["error"] == "unavailable"

    csrf = csrf_of(http.get("/signin").get_data(as_text=True))
    signed_in = http.post("/signin", data={"name": "alice", "password": PASSWORD, "csrf": csrf})
    assert signed_in.status_code == 503
    assert "Traceback" not in signed_in.get_data(as_text=True)
