"""What a file asks of the printer besides room: a heated bed (M140/M190), a heated chamber (M141/M191)
and how many tools (T1 ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from fleet.gcode.analysis import analyze_path
from fleet.gcode.results import Analysis

Analyze = Callable[..., Analysis]
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "gcode"


@pytest.mark.parametrize(
    ("body", "bed"),
    [
        ("G1 X1 E1", None),
        ("M140 S0\nG1 X1 E1", None),  # turning the bed off is not heating it
        ("M140 S60\nM190 S65\nG1 X1 E1\nM140 S0", 65.0),
        ("M190 R70\nG1 X1 E1", 70.0),
        ("M140 S55 ; first layer\nG1 X1 E1", 55.0),
    ],
)
def test_the_hottest_bed_the_file_asks_for(analyze_text: Analyze, body: str, bed: float | None) -> None:
    assert analyze_text(body).bed_temperature_c == bed


@pytest.mark.parametrize(
    ("body", "chamber"),
    [
        ("M140 S100\nG1 X1 E1", None),  # a hot bed is no chamber
        ("M141 S0\nG1 X1 E1", None),  # turning the chamber off is not heating it
        ("M141 S45\nM191 S50\nG1 X1 E1\nM141 S0", 50.0),
        ("M191 R40\nG1 X1 E1", 40.0),
        ("M141 S" + "9" * 320 + "\nG1 X1 E1", None),  # past any number: not a temperature to keep
    ],
)
def test_the_hottest_chamber_the_file_asks_for(
    analyze_text: Analyze, body: str, chamber: float | None
) -> None:
    analysis = analyze_text(body)
    assert analysis.chamber_temperature_c == chamber
    assert Analysis.from_dict(analysis.to_dict()) == analysis
    json.dumps(analysis.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("body", "tools"),
    [
        ("G1 X1 E1", 1),
        ("T0\nG1 X1 E1", 1),
        ("T0\nG1 X1 E1\nT1\nG1 X2 E1\nT0", 2),
        ("T2\nG1 X1 E1", 3),
        ("M104 T1 S210\nG1 X1 E1", 2),  # heating tool 1 means the file uses it
        ("M109 S210\nG1 X1 E1", 1),
        ("T\nTx\nTc\nT?\nTIMELAPSE_TAKE_FRAME\nG1 X1 E1", 1),  # Prusa's MMU words and macros pick no tool
        ("T9999\nG1 X1 E1", 1),  # no printer has that tool: not a requirement anyone could meet
    ],
)
def test_the_tools_a_file_uses(analyze_text: Analyze, body: str, tools: int) -> None:
    assert analyze_text(body).tools == tools


def test_a_stored_analysis_keeps_them_and_an_old_one_reads_as_one_tool_and_no_bed(
    analyze_text: Analyze,
) -> None:
    analysis = analyze_text("M190 S60\nT1\nG1 X1 E1")
    assert Analysis.from_dict(analysis.to_dict()) == analysis
    old = {
        k: v
        for k, v in analysis.to_dict().items()
        if k not in ("bed_temperature_c", "tools", "chamber_temperature_c")
    }
    read = Analysis.from_dict(old)
    assert (read.bed_temperature_c, read.tools, read.chamber_temperature_c) == (None, 1, None)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="the shared slicer samples are not beside the checkout")
def test_a_real_slicer_file_heats_its_bed_with_one_tool() -> None:
    analysis = analyze_path(SAMPLES / "benchy_prusaslicer.gcode")
    assert analysis.bed_temperature_c == 60.0
    assert analysis.tools == 1


def test_a_bed_temperature_past_any_number_is_refused_and_never_kept(analyze_text: Analyze) -> None:
    # 320 nines read as infinity: the safety rules refuse it, and the analysis stays valid JSON.
    analysis = analyze_text("M140 S60\nM190 R" + "9" * 320 + "\nG1 X1 E1")
    assert analysis.bed_temperature_c == 60.0
    assert any(f.rule == "bed-temperature-absolute" for f in analysis.findings)
    json.dumps(analysis.to_dict(), allow_nan=False)
