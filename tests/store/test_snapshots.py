"""Plate photos in the store (SQLite and PostgreSQL), and migration 5 → 6."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from fleet.models import Role
from fleet.store import PlateSnapshot, Store
from fleet.store.schema import plate_snapshots

from .helpers import T0, make_printer, submit
from .test_enrollment import assert_upgrade_keeps_alice

JPEG = b"\xff\xd8\xff" + bytes(range(256)) * 40  # every byte value, binary-safe on both backends


def test_photos_are_kept_replaced_per_job_and_swept_by_age(store: Store) -> None:
    member = store.create_member("alice", Role.MEMBER, now=T0)
    store.create_printer(make_printer("mk4"))
    first, second = submit(store, member.id, count=2)
    store.add_snapshot(PlateSnapshot("mk4", first.id, "image/jpeg", T0, JPEG))
    store.add_snapshot(PlateSnapshot("mk4", first.id, "image/png", T0 + 10, b"\x89PNG\r\n\x1a\nlater"))
    store.add_snapshot(PlateSnapshot("mk4", second.id, "image/jpeg", T0 + 100, JPEG))

    assert store.job_snapshot(first.id) == PlateSnapshot(
        "mk4", first.id, "image/png", T0 + 10, b"\x89PNG\r\n\x1a\nlater"
    )
    assert store.job_snapshot(second.id) == PlateSnapshot("mk4", second.id, "image/jpeg", T0 + 100, JPEG)
    assert store.jobs_with_snapshots([first.id, second.id, 999]) == {first.id, second.id}
    assert store.remove_snapshots_before(T0 + 50) == 1
    assert store.job_snapshot(first.id) is None
    assert store.jobs_with_snapshots([first.id, second.id]) == {second.id}


def test_a_version_7_database_gains_plate_snapshots_and_keeps_its_members(
    engine: Engine, fresh_url: str, data_dir: Path, request: pytest.FixtureRequest
) -> None:
    assert_upgrade_keeps_alice(
        engine, fresh_url, data_dir, request, from_version=7, new_table=plate_snapshots
    )
