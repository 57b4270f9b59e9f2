"""Acceptance on real slicer output (PrusaSlicer, Cura), checked against OctoPrint's own analysis."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from octoprint.util.gcodeInterpreter import gcode as OctoPrintAnalysis

from fleet.gcode import Analysis, Severity, analyze_path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FILES = ["benchy_prusaslicer.gcode", "puzzle_cura.gcode", "vase_prusaslicer.gcode"]


@pytest.fixture(scope="module")
def analyses(sample_gcode: Path) -> dict[str, Analysis]:
    return {name: analyze_path(sample_gcode / name) for name in FILES}


def test_benchy_header(analyses: dict[str, Analysis]) -> None:
    a = analyses["benchy_prusaslicer.gcode"]
    assert a.slicer is not None and (a.slicer.name, a.slicer.version) == ("PrusaSlicer", "2.6.1")
    assert a.flavour == "marlin2"
    assert a.estimated_time_s == 2323  # 38m 43s
    assert a.best_time_s == 2323
    assert a.filament_length_mm == pytest.approx(4282.06)
    assert a.filament_weight_g == pytest.approx(12.77)
    assert a.material == "PLA"
    assert a.nozzle_diameter == 0.4
    assert a.filament_diameter == 1.75
    assert a.line_count == 89383
    assert a.size_bytes == 2024348


def test_benchy_thumbnails_are_png(analyses: dict[str, Analysis]) -> None:
    thumbs = analyses["benchy_prusaslicer.gcode"].thumbnails
    assert [(t.width, t.height, t.format) for t in thumbs] == [(16, 16, "PNG"), (220, 124, "PNG")]
    assert all(t.data.startswith(PNG_MAGIC) for t in thumbs)


def test_benchy_bounds_include_the_purge_line_and_model_bounds_do_not(analyses: dict[str, Analysis]) -> None:
    a = analyses["benchy_prusaslicer.gcode"]
    assert a.bounds is not None and a.model_bounds is not None
    assert a.bounds.min_y == -2.0  # the intro line at Y -2
    assert (a.bounds.min_x, a.bounds.max_x) == (40.0, 170.0)
    assert a.bounds.contains(a.model_bounds)
    assert a.model_bounds.min_y > -2.0
    assert a.model_bounds.min_x > a.bounds.min_x and a.model_bounds.max_x < a.bounds.max_x
    assert a.model_bounds.max_z == a.bounds.max_z == 48.0


def test_cura_puzzle(analyses: dict[str, Analysis]) -> None:
    a = analyses["puzzle_cura.gcode"]
    assert a.slicer is not None and (a.slicer.name, a.slicer.version) == ("Cura_SteamEngine", "2.3.1")
    assert a.estimated_time_s == 3485
    assert a.flavour == "reprap"
    # No filament figure in the header: measured from E, like OctoPrint (3206.49 mm).
    assert a.filament_length_mm == pytest.approx(3206.49, abs=0.01)
    # The skirt is not the model.
    assert a.bounds is not None and a.model_bounds is not None
    assert a.model_bounds.min_x > a.bounds.min_x and a.model_bounds.min_y > a.bounds.min_y


def test_vase(analyses: dict[str, Analysis]) -> None:
    a = analyses["vase_prusaslicer.gcode"]
    assert a.slicer is not None and (a.slicer.name, a.slicer.version) == ("PrusaSlicer", "2.7.4")
    assert a.estimated_time_s == 4000  # 1h 6m 40s
    assert a.filament_length_mm == pytest.approx(2996.07)
    assert a.filament_weight_g == pytest.approx(8.94)
    assert a.thumbnails == ()
    assert a.bounds is not None and a.model_bounds is not None
    assert (a.bounds.min_x, a.bounds.min_y) == (2.0, 10.0)  # the prime line
    assert a.model_bounds.min_x > 80.0


@pytest.mark.parametrize("name", FILES)
def test_bounds_agree_with_octoprint(sample_gcode: Path, analyses: dict[str, Analysis], name: str) -> None:
    ours = analyses[name].bounds
    assert ours is not None
    octo = OctoPrintAnalysis(progress_callback=None)
    octo.load(str(sample_gcode / name))
    area = octo.get_result()["printing_area"]
    # OctoPrint floors the lowest Z at the bed (its load(bed_z=0.0) default); the rest must match.
    expected = (area["minX"], area["minY"], area["maxX"], area["maxY"], area["maxZ"], area["minZ"])
    got = (ours.min_x, ours.min_y, ours.max_x, ours.max_y, ours.max_z, min(ours.min_z, 0.0))
    assert got == pytest.approx(expected, abs=0.01)
    # Without the floor OctoPrint reports the real lowest extrusion too, and it is ours.
    unfloored = OctoPrintAnalysis(progress_callback=None)
    unfloored.load(str(sample_gcode / name), bed_z=math.inf)
    assert unfloored.get_result()["printing_area"]["minZ"] == pytest.approx(ours.min_z, abs=0.01)


@pytest.mark.parametrize("name", FILES)
def test_samples_are_clean_and_estimates_are_plausible(analyses: dict[str, Analysis], name: str) -> None:
    a = analyses[name]
    assert not a.refused
    assert [f for f in a.findings if f.severity is Severity.WARNING] == []
    assert a.estimated_time_s is not None
    # Our own estimate is a model, not the slicer's: within 20 % on real files.
    assert a.own_time_estimate_s == pytest.approx(a.estimated_time_s, rel=0.2)


def test_analysis_round_trips_through_json(analyses: dict[str, Analysis]) -> None:
    import json

    for a in analyses.values():
        assert Analysis.from_dict(json.loads(json.dumps(a.to_dict()))) == a
