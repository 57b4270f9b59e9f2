"""The printer profile's capabilities (bed shape, heated bed and chamber, extruders), and migration 5 → 6."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from fleet.lending import decode_lending
from fleet.store import Store, open_store
from fleet.store.migrations import current_version, migrate
from fleet.store.schema import SCHEMA_VERSION, printers

from .helpers import T0, create_version_with_alice, make_printer
from .test_enrollment import assert_same_as_fresh


def test_a_new_printer_keeps_its_profile_and_unknown_stays_unknown(store: Store) -> None:
    round_one = make_printer(
        "delta", bed_shape="circular", heated_bed=False, heated_chamber=True, extruders=2
    )
    store.create_printer(round_one)
    store.create_printer(make_printer("plain"))

    assert store.get_printer("delta") == round_one
    plain = store.get_printer("plain")
    assert (plain.bed_shape, plain.heated_bed, plain.heated_chamber, plain.extruders) == (None,) * 4


def test_the_profile_changes_like_any_other_field(store: Store) -> None:
    store.create_printer(make_printer("p1"))

    updated = store.update_printer("p1", bed_shape="rectangular", heated_bed=True, extruders=1)

    assert (updated.bed_shape, updated.heated_bed, updated.heated_chamber, updated.extruders) == (
        "rectangular",
        True,
        None,
        1,
    )
    assert store.get_printer("p1") == updated
    assert store.update_printer("p1", heated_bed=False).heated_bed is False


def test_a_version_5_database_gains_the_profile_columns_and_keeps_its_printers(
    engine: Engine, fresh_url: str, data_dir: Path, request: pytest.FixtureRequest
) -> None:
    create_version_with_alice(engine, 5)  # today's tables without the profile columns
    with engine.begin() as conn:
        old = make_printer("old")
        conn.execute(
            printers.insert().values(
                id=old.id,
                name=old.name,
                state=old.state.value,
                min_x=0.0,
                min_y=0.0,
                min_z=0.0,
                max_x=220.0,
                max_y=200.0,
                max_z=200.0,
                nozzle_diameter=0.4,
                material="PLA",
                restricted=False,
                created_at=T0,
                capabilities="{}",
            )
        )

    assert migrate(engine) == SCHEMA_VERSION

    with engine.connect() as conn:
        assert current_version(conn) == SCHEMA_VERSION
        row = conn.execute(select(printers).where(printers.c.id == "old")).one()
        assert (row.bed_shape, row.heated_bed, row.heated_chamber, row.extruders) == (None,) * 4
    assert_same_as_fresh(engine, fresh_url, request)
    store = open_store(fresh_url, data_dir)
    try:
        assert [m.name for m in store.list_members()] == ["alice"]
        assert store.update_printer("old", bed_shape="circular", extruders=3).extruders == 3
    finally:
        store.close()


def test_the_owners_lending_terms_are_kept_and_cleared(store: Store) -> None:
    terms = decode_lending(
        {
            "time_zone": "Europe/Paris",
            "windows": [{"days": ["mon", "tue"], "start": "20:00", "end": "08:00"}],
            "materials": ["PLA"],
        }
    )
    store.create_printer(make_printer("home", lending=terms))
    assert store.get_printer("home").lending == terms
    assert store.update_printer("home", lending=None).lending is None
    assert store.update_printer("home", lending=terms).lending == terms
