"""Spools in the store (SQLite and PostgreSQL): loading, what jobs take, and migration 8 → 9."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from fleet.app.statistics import grams_of as statistics_grams
from fleet.economy.pricing import grams_of as price_grams
from fleet.errors import Conflict
from fleet.models import Role
from fleet.states import JobState
from fleet.store import Store
from fleet.store.schema import spools
from fleet.web.stats import MemberStats

from .helpers import T0, make_printer, race, submit
from .test_enrollment import assert_upgrade_keeps_alice

BLACK_PETG: dict[str, Any] = {
    "material": "PETG",
    "colour_name": "black",
    "colour_hex": "#111111",
    "diameter_mm": 1.75,
    "vendor": "Prusament",
    "net_grams": 1000.0,
    "remaining_grams": 400.0,
    "price_per_kg": 2990,
    "shelf": "B2",
}


def test_a_spool_is_loaded_on_one_printer_and_the_printer_takes_its_material(store: Store) -> None:
    store.create_printer(make_printer("mk4", material="PLA"))
    store.create_printer(make_printer("mini", material="PLA"))
    spool = store.create_spool(BLACK_PETG, now=T0)
    assert (spool.printer_id, spool.price_per_kg, spool.label) == (None, 2990, "black PETG")

    loaded = store.load_spool(spool.id, "mk4", now=T0 + 1)
    assert loaded.printer_id == "mk4"
    assert store.get_printer("mk4").material == "PETG"
    assert store.loaded_spools() == {"mk4": loaded}

    with pytest.raises(Conflict, match=r"loaded on printer mk4.*unload it there first"):
        store.load_spool(spool.id, "mini", now=T0 + 2)
    other = store.create_spool({**BLACK_PETG, "colour_name": "white"}, now=T0)
    with pytest.raises(Conflict, match=r"printer mk4 has spool .* loaded: unload it first"):
        store.load_spool(other.id, "mk4", now=T0 + 2)
    assert store.get_spool(other.id).printer_id is None, "a refused load changes nothing"

    unloaded = store.unload_spool(spool.id, now=T0 + 3, shelf="A1")
    assert (unloaded.printer_id, unloaded.shelf) == (None, "A1")
    assert store.get_printer("mk4").material is None
    assert store.spool_page(on_shelf=True).items == [unloaded, store.get_spool(other.id)]


def test_two_spools_loaded_on_one_printer_at_once_one_wins(store: Store) -> None:
    store.create_printer(make_printer("mk4"))
    ids = [store.create_spool(BLACK_PETG, now=T0).id for _ in range(4)]

    def load(index: int) -> bool:
        try:
            store.load_spool(ids[index], "mk4", now=T0)
        except Conflict:
            return False
        return True

    assert sorted(race(4, load)) == [False, False, False, True]
    assert [s.id for s in store.spool_page(on_shelf=False).items] == [store.loaded_spools()["mk4"].id]


def _printing(store: Store, weight: float) -> int:
    member = store.create_member(f"m{weight}", Role.MEMBER, now=T0)
    (job,) = submit(store, member.id, analysis={"filament_weight_g": weight})
    assert store.assign_job(job.id, "mk4", actor="system", now=T0)
    store.transition_job(job.id, JobState.PRINTING, actor="printer:mk4", reason="", now=T0)
    return job.id


@pytest.mark.parametrize(
    ("outcome", "share", "left"),
    [(JobState.DONE, None, 370.0), (JobState.FAILED, 0.5, 385.0), (JobState.CANCELLED, None, 400.0)],
)
def test_a_job_takes_its_grams_from_the_loaded_spool_once_when_it_ends(
    store: Store, outcome: JobState, share: float | None, left: float
) -> None:
    store.create_printer(make_printer("mk4"))
    spool = store.load_spool(store.create_spool(BLACK_PETG, now=T0).id, "mk4", now=T0)
    job_id = _printing(store, 30.0)

    store.transition_job(job_id, outcome, actor="printer:mk4", reason="", now=T0 + 60, printed_share=share)

    assert store.get_spool(spool.id).remaining_grams == left
    used = store.spool_use(job_id)
    assert used is None if left == 400.0 else used == (spool.id, 400.0 - left)


@pytest.mark.parametrize(("weight", "grams"), [(12.345, 12.35), (-5.0, 0.0), (True, 0.0), (0.004, 0.0)])
def test_the_spool_the_price_and_the_statistics_read_the_same_grams(
    store: Store, weight: Any, grams: float
) -> None:
    # One reading of an analysis's weight: to the centigram, half up; nothing for what is not a weight.
    store.create_printer(make_printer("mk4"))
    spool = store.load_spool(store.create_spool(BLACK_PETG, now=T0).id, "mk4", now=T0)
    job_id = _printing(store, weight)
    store.transition_job(job_id, JobState.DONE, actor="printer:mk4", reason="", now=T0 + 60)
    job = store.get_job(job_id)
    assert store.get_spool(spool.id).remaining_grams == round(400.0 - grams, 2)
    assert statistics_grams(job) == grams
    assert price_grams(job.analysis.get("filament_weight_g")) == Decimal(str(grams)).quantize(Decimal("0.01"))
    member = MemberStats(job.member_id, "m")
    member.add(job, now=T0 + 60)
    assert member.filament_g == grams


def test_a_spool_never_goes_below_zero(store: Store) -> None:
    store.create_printer(make_printer("mk4"))
    spool = store.load_spool(
        store.create_spool({**BLACK_PETG, "remaining_grams": 12.5}, now=T0).id, "mk4", now=T0
    )
    job_id = _printing(store, 80.0)
    store.transition_job(job_id, JobState.DONE, actor="printer:mk4", reason="", now=T0 + 60)
    assert store.get_spool(spool.id).remaining_grams == 0.0
    assert store.spool_use(job_id) == (spool.id, 12.5)


def test_remaining_grams_above_the_net_weight_are_refused(store: Store) -> None:
    spool = store.create_spool(BLACK_PETG, now=T0)
    with pytest.raises(Conflict, match="cannot be more than net_grams"):
        store.update_spool(spool.id, {"remaining_grams": 1200.0}, now=T0)
    assert store.update_spool(spool.id, {"remaining_grams": 1000.0}, now=T0).remaining_grams == 1000.0


def test_a_version_11_database_gains_spools_and_keeps_its_members(
    engine: Engine, fresh_url: str, data_dir: Path, request: pytest.FixtureRequest
) -> None:
    assert_upgrade_keeps_alice(engine, fresh_url, data_dir, request, from_version=11, new_table=spools)
