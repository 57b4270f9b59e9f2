"""Schema version 3: members get a password hash column (for the dashboard), added by an upgrade step."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from fleet.store.migrations import current_version, migrate
from fleet.store.schema import SCHEMA_VERSION, members

from .helpers import create_version_with_alice
from .test_enrollment import assert_same_as_fresh


def test_a_version_2_database_gains_password_hashes_and_keeps_its_members(
    engine: Engine, fresh_url: str, request: pytest.FixtureRequest
) -> None:
    create_version_with_alice(engine, 2)  # every table of today's, but no password column

    assert migrate(engine) == SCHEMA_VERSION >= 3

    with engine.connect() as conn:
        assert current_version(conn) == SCHEMA_VERSION
        rows = conn.execute(select(members.c.name, members.c.password_hash)).all()
    assert [tuple(r) for r in rows] == [("alice", None)]
    assert_same_as_fresh(engine, fresh_url, request)
