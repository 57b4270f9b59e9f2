"""Opening a database: creation, upgrades, refusal of a newer schema, SQLite's settings."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, inspect, select, text, update
from sqlalchemy.engine import Connection, Engine

from fleet.errors import Invalid
from fleet.models import Role
from fleet.store import SchemaTooNew, Store, open_store
from fleet.store.migrations import current_version, migrate
from fleet.store.schema import DATA_TABLES, SCHEMA_VERSION, schema_version

from .helpers import T0, race


def version_of(engine: Engine) -> int | None:
    with engine.connect() as conn:
        return current_version(conn)


def test_a_fresh_database_reaches_the_latest_version(engine: Engine) -> None:
    assert version_of(engine) is None

    assert migrate(engine) == SCHEMA_VERSION

    assert version_of(engine) == SCHEMA_VERSION
    tables = set(inspect(engine).get_table_names())
    assert {table.name for table in DATA_TABLES} | {"schema_version"} <= tables
    with engine.connect() as conn:
        assert conn.execute(select(schema_version.c.version)).scalars().all() == [SCHEMA_VERSION]


def test_reopening_changes_nothing(fresh_url: str, data_dir: Path) -> None:
    first = open_store(fresh_url, data_dir)
    alice = first.create_member("alice", Role.MEMBER, now=T0)
    first.close()

    again = open_store(fresh_url, data_dir)
    try:
        assert again.list_members() == [alice]
        with again.engine.connect() as conn:
            assert conn.execute(select(schema_version.c.version)).scalars().all() == [SCHEMA_VERSION]
    finally:
        again.close()


def test_a_newer_database_is_refused_clearly(engine: Engine, fresh_url: str, data_dir: Path) -> None:
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(update(schema_version).values(version=SCHEMA_VERSION + 7))

    with pytest.raises(SchemaTooNew) as caught:
        open_store(fresh_url, data_dir)

    message = str(caught.value)
    assert f"schema version {SCHEMA_VERSION + 7}" in message
    assert f"up to {SCHEMA_VERSION}" in message
    assert "upgrade CrowdFab" in message
    assert version_of(engine) == SCHEMA_VERSION + 7


def test_upgrade_steps_run_once_in_order(engine: Engine) -> None:
    migrate(engine)
    applied: list[int] = []

    def add_widgets(conn: Connection) -> None:
        applied.append(SCHEMA_VERSION)
        Table("widgets", MetaData(), Column("id", Integer, primary_key=True)).create(conn)

    def add_widget_index(conn: Connection) -> None:
        applied.append(SCHEMA_VERSION + 1)
        conn.execute(text("CREATE INDEX ix_widgets_id ON widgets (id)"))

    upgrades = {SCHEMA_VERSION: add_widgets, SCHEMA_VERSION + 1: add_widget_index}
    assert migrate(engine, latest=SCHEMA_VERSION + 2, upgrades=upgrades) == SCHEMA_VERSION + 2
    assert migrate(engine, latest=SCHEMA_VERSION + 2, upgrades=upgrades) == SCHEMA_VERSION + 2

    assert applied == [SCHEMA_VERSION, SCHEMA_VERSION + 1]
    assert version_of(engine) == SCHEMA_VERSION + 2
    assert "widgets" in inspect(engine).get_table_names()


def test_a_failing_step_leaves_the_database_as_it_was(engine: Engine) -> None:
    migrate(engine)

    def half_done(conn: Connection) -> None:
        Table("widgets", MetaData(), Column("id", Integer, primary_key=True)).create(conn)
        raise RuntimeError("step failed")

    with pytest.raises(RuntimeError, match="step failed"):
        migrate(engine, latest=SCHEMA_VERSION + 1, upgrades={SCHEMA_VERSION: half_done})

    assert version_of(engine) == SCHEMA_VERSION
    assert "widgets" not in inspect(engine).get_table_names()


def test_a_missing_step_is_reported(engine: Engine) -> None:
    migrate(engine)

    with pytest.raises(RuntimeError, match=f"from schema version {SCHEMA_VERSION} to {SCHEMA_VERSION + 1}"):
        migrate(engine, latest=SCHEMA_VERSION + 1, upgrades={})


def test_processes_starting_together_create_the_schema_once(fresh_url: str, data_dir: Path) -> None:
    opened: list[Store] = race(6, lambda _: open_store(fresh_url, data_dir))
    try:
        for store in opened:
            assert store.list_members() == []
        with opened[0].engine.connect() as conn:
            assert conn.execute(select(schema_version.c.version)).scalars().all() == [SCHEMA_VERSION]
    finally:
        for store in opened:
            store.close()


def test_default_is_sqlite_in_a_private_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"

    store = open_store(None, data_dir)
    try:
        assert store.backend == "sqlite"
        assert (data_dir / "fleet.db").is_file()
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    finally:
        store.close()


def test_sqlite_connections_are_tuned(tmp_path: Path) -> None:
    store = open_store(None, tmp_path, busy_timeout=7.5)
    try:
        with store.engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
        assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 7500}
    finally:
        store.close()


def test_an_unsupported_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="'mysql'"):
        open_store("mysql://fleet@localhost/fleet", tmp_path)
    with pytest.raises(Invalid, match="not valid"):
        open_store("not a url", tmp_path)


def test_a_plain_sqlite_engine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="make_engine"):
        Store(create_engine(f"sqlite:///{tmp_path / 'x.db'}"))
