"""Enrollment codes and printer credentials: single use under races, expiry, revocation, migration 1 → 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Table, func, insert, inspect, select, text
from sqlalchemy.engine import Engine

from fleet.auth import hash_token
from fleet.store import Store, open_store
from fleet.store.engine import make_engine, write_transaction
from fleet.store.migrations import current_version, migrate
from fleet.store.schema import SCHEMA_VERSION, metadata, schema_version

from .helpers import ADDED_IN_VERSION, T0, create_version_with_alice, make_printer, race

CODE = hash_token("CODE")
V1_TABLES = ("members", "api_tokens", "printers", "grants", "jobs", "job_events", "settings")


def enroll(store: Store, printer_id: str = "mini", *, now: float = T0 + 10, key: str = "t", code: str = CODE):
    return store.enroll_printer(
        code,
        make_printer(printer_id),
        mqtt_password_hash="$7$101$c2FsdA==$aGFzaA==",
        http_token_hash=hash_token(key),
        now=now,
    )


def test_a_code_enrolls_one_printer_once(store: Store) -> None:
    store.add_enrollment_code(CODE, created_by=None, now=T0, expires_at=T0 + 60)

    printer = enroll(store)
    assert printer is not None and printer.id == "mini"
    assert enroll(store, key="other") is None
    used = store.get_enrollment_code(CODE)
    assert used is not None and (used.used_at, used.used_by_printer) == (T0 + 10, "mini")
    assert store.printer_for_token(hash_token("t")) == printer


def test_an_expired_or_unknown_code_enrolls_nothing(store: Store) -> None:
    store.add_enrollment_code(CODE, created_by=None, now=T0, expires_at=T0 + 60)

    assert enroll(store, now=T0 + 60) is None
    assert enroll(store, code=hash_token("NOPE")) is None
    assert store.list_printers() == []
    assert store.get_enrollment_code(CODE).used_at is None  # type: ignore[union-attr]


def test_taken_ids_get_a_suffix(store: Store) -> None:
    store.create_printer(make_printer("mini"))
    for n in range(2):
        store.add_enrollment_code(hash_token(f"C{n}"), created_by=None, now=T0, expires_at=T0 + 60)
    first = enroll(store, code=hash_token("C0"), key="a")
    second = enroll(store, code=hash_token("C1"), key="b")
    assert (first.id, second.id) == ("mini-2", "mini-3")  # type: ignore[union-attr]


def test_racing_enrollments_with_one_code_make_one_printer(store: Store) -> None:
    store.add_enrollment_code(CODE, created_by=None, now=T0, expires_at=T0 + 60)

    results = race(8, lambda i: enroll(store, f"p{i}", key=f"t{i}"))

    made = [r for r in results if r is not None]
    assert len(made) == 1
    assert [p.id for p in store.list_printers()] == [made[0].id]
    assert len(store.active_credentials()) == 1


def test_revoked_credentials_no_longer_sign_in(store: Store) -> None:
    store.add_enrollment_code(CODE, created_by=None, now=T0, expires_at=T0 + 60)
    enroll(store)

    assert store.revoke_credentials("mini", now=T0 + 20) is True
    assert store.revoke_credentials("mini", now=T0 + 30) is False
    assert store.printer_for_token(hash_token("t")) is None
    assert store.active_credentials() == []
    creds = store.credentials("mini")
    assert creds is not None and creds.revoked_at == T0 + 20 and not creds.active


def describe(engine: Engine) -> dict[str, object]:
    """Tables, columns (type, nullability), keys and indexes, as the database reports them."""
    found = inspect(engine)
    out: dict[str, object] = {}
    for table in sorted(found.get_table_names()):
        out[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)],
            "pk": found.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (
                    tuple(f["constrained_columns"]),
                    f["referred_table"],
                    str(f.get("options", {}).get("ondelete")),
                )
                for f in found.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (tuple(i["column_names"]), bool(i["unique"])) for i in found.get_indexes(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
        }
    return out


def assert_same_as_fresh(engine: Engine, fresh_url: str, request: pytest.FixtureRequest) -> None:
    """The migrated database has exactly the tables, columns, keys and indexes of a freshly built one."""
    if engine.dialect.name == "sqlite":
        other_url = fresh_url.replace("fleet.db", "fresh.db")
    else:
        other_url = request.getfixturevalue("pg_server").create_database()
    fresh = make_engine(other_url)
    try:
        migrate(fresh)
        assert describe(fresh) == describe(engine)
    finally:
        fresh.dispose()


def assert_upgrade_keeps_alice(
    engine: Engine,
    fresh_url: str,
    data_dir: Path,
    request: pytest.FixtureRequest,
    *,
    from_version: int,
    new_table: Table,
) -> None:
    """A database of ``from_version`` with alice in it migrates to the latest version: ``new_table``
    is there and empty, the result is what a fresh database is, and alice is still a member."""
    create_version_with_alice(engine, from_version)
    assert migrate(engine) == SCHEMA_VERSION > from_version
    with engine.connect() as conn:
        assert current_version(conn) == SCHEMA_VERSION
        assert conn.execute(select(func.count()).select_from(new_table)).scalar_one() == 0
    assert_same_as_fresh(engine, fresh_url, request)
    store = open_store(fresh_url, data_dir)
    try:
        assert [m.name for m in store.list_members()] == ["alice"]
    finally:
        store.close()


def test_a_version_1_database_migrates_to_what_a_fresh_one_is(
    engine: Engine, fresh_url: str, request: pytest.FixtureRequest
) -> None:
    with write_transaction(engine) as conn:
        metadata.create_all(conn, tables=[metadata.tables[name] for name in (*V1_TABLES, "schema_version")])
        # Later versions added columns to version 1's tables: take them off again.
        conn.execute(text("ALTER TABLE members DROP COLUMN password_hash"))
        for statement in ADDED_IN_VERSION[11][:1] + ADDED_IN_VERSION[7]:
            conn.execute(text(statement))
        conn.execute(text("ALTER TABLE jobs DROP COLUMN colour"))
        conn.execute(insert(schema_version).values(version=1))

    assert migrate(engine) == SCHEMA_VERSION >= 2
    with engine.connect() as conn:
        assert current_version(conn) == SCHEMA_VERSION

    assert_same_as_fresh(engine, fresh_url, request)
