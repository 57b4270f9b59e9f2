"""Store fixtures: every store test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from fleet.models import Member, Role
from fleet.store import BlobStore, Store, open_store
from fleet.store.engine import make_engine
from fleet.store.migrations import migrate

from .backends import BACKEND_PARAMS, PostgresServer, sqlite_url, truncate
from .helpers import T0


@pytest.fixture(scope="session")
def pg_database_url(pg_server: PostgresServer) -> str:
    """One database for the whole session, migrated once; tests empty it before they start."""
    url = pg_server.create_database()
    engine = make_engine(url)
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture(params=BACKEND_PARAMS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a new SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    url: str = request.getfixturevalue("pg_database_url")
    engine = make_engine(url)
    try:
        truncate(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def engine(fresh_url: str) -> Iterator[Engine]:
    """An engine on :func:`fresh_url`'s empty database (for building a database by hand)."""
    made = make_engine(fresh_url)
    yield made
    made.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(store_url: str, data_dir: Path) -> Iterator[Store]:
    opened = open_store(store_url, data_dir)
    yield opened
    opened.close()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


@pytest.fixture
def member(store: Store) -> Member:
    return store.create_member("alice", Role.MEMBER, now=T0)
