"""Schema version 3: members get a password hash column (for the dashboard), added by an upgrade step."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine

from fleet.store.engine import make_engine, write_transaction
from fleet.store.migrations import current_version, migrate
from fleet.store.schema import SCHEMA_VERSION, members, metadata, schema_version

from .helpers import T0
from .test_enrollment import assert_same_as_fresh


@pytest.fixture
def engine(fresh_url: str) -> Iterator[Engine]:
    made = make_engine(fresh_url)
    yield made
    made.dispose()


def test_a_version_2_database_gains_password_hashes_and_keeps_its_members(
    engine: Engine, fresh_url: str, request: pytest.FixtureRequest
) -> None:
    with write_transaction(engine) as conn:
        metadata.create_all(conn)
        # Version 2 had every table of today but no password column.
        conn.execute(text("ALTER TABLE members DROP COLUMN password_hash"))
        conn.execute(text("DROP TABLE submission_keys"))  # version 4's
        conn.execute(text("DROP TABLE failed_attempts"))  # version 5's
        conn.execute(insert(schema_version).values(version=2))
        conn.execute(
            text("INSERT INTO members (name, role, active, created_at) VALUES ('alice', 'member', true, :t)"),
            {"t": T0},
        )

    assert migrate(engine) == SCHEMA_VERSION >= 3

    with engine.connect() as conn:
        assert current_version(conn) == SCHEMA_VERSION
        rows = conn.execute(select(members.c.name, members.c.password_hash)).all()
    assert [tuple(r) for r in rows] == [("alice", None)]
    assert_same_as_fresh(engine, fresh_url, request)
