"""Bounds, filament and time from the moves: arcs, modes, resets, units, and the model-only bounds."""

from __future__ import annotations

from typing import Callable, Optional

import pytest

from fleet.gcode import Analysis

Analyze = Callable[..., Analysis]
Bounds = Optional[tuple[float, float, float, float, float, float]]


def box(a: Analysis) -> Bounds:
    b = a.bounds
    return None if b is None else (b.min_x, b.min_y, b.min_z, b.max_x, b.max_y, b.max_z)


START = "G90\nM83\nG1 Z0.2 F600\n"

# (id, G-code after START, expected bounds: min x, y, z, max x, y, z)
BOUNDS_CASES: list[tuple[str, str, Bounds]] = [
    ("straight line", "G1 X10 Y10\nG1 X20 Y15 E1", (10, 10, 0.2, 20, 15, 0.2)),
    ("travel only", "G1 X10 Y10\nG0 X50 Y50", None),
    ("start point counts", "G1 X5 Y5\nG1 X6 Y5 E0.1\nG1 X7 Y9 E0.1", (5, 5, 0.2, 7, 9, 0.2)),
    ("G0 that extrudes counts", "G0 X1 Y1\nG0 X2 Y3 E1", (1, 1, 0.2, 2, 3, 0.2)),
    ("E-only move is not a move", "G1 X50 Y50\nG1 E5\nG1 X0 Y0\nG1 X1 Y0 E1", (0, 0, 0.2, 1, 0, 0.2)),
    (
        "retraction is not extrusion",
        "G1 X5 Y5\nG1 X9 Y9 E-1\nG1 X10 Y10\nG1 X11 Y10 E1",
        (10, 10, 0.2, 11, 10, 0.2),
    ),
    ("firmware retraction G10/G11", "G1 X10 Y0\nG10\nG1 X20 Y0\nG11\nG1 X30 Y0 E1", (20, 0, 0.2, 30, 0, 0.2)),
    # Arcs: the extreme points count, not only the ends.
    ("G3 half circle through +y", "G1 X10 Y0\nG3 X-10 Y0 I-10 J0 E5", (-10, 0, 0.2, 10, 10, 0.2)),
    ("G2 half circle through -y", "G1 X10 Y0\nG2 X-10 Y0 I-10 J0 E5", (-10, -10, 0.2, 10, 0, 0.2)),
    ("G2 full circle", "G1 X10 Y0\nG2 X10 Y0 I-10 J0 E5", (-10, -10, 0.2, 10, 10, 0.2)),
    ("G2 by radius, half circle", "G1 X10 Y0\nG2 X-10 Y0 R10 E5", (-10, -10, 0.2, 10, 0, 0.2)),
    ("G3 by radius, short way", "G1 X10 Y0\nG3 X0 Y10 R10 E5", (0, 0, 0.2, 10, 10, 0.2)),
    ("G3 by negative radius, long way", "G1 X10 Y0\nG3 X0 Y10 R-10 E5", (0, 0, 0.2, 20, 20, 0.2)),
    (
        "travelling arc is not extrusion",
        "G1 X10 Y0\nG3 X-10 Y0 I-10 J0\nG1 X-11 Y0 E1",
        (-11, 0, 0.2, -10, 0, 0.2),
    ),
    ("helical arc spans Z", "G1 X10 Y0\nG3 X-10 Y0 Z1.2 I-10 J0 E5", (-10, 0, 0.2, 10, 10, 1.2)),
    # Modes and resets.
    ("G91 relative moves", "G1 X10 Y10\nG91\nG1 X5 Y-2 E1\nG1 X5 Y0 E1", (10, 8, 0.2, 20, 10, 0.2)),
    ("G91 makes E relative too", "M82\nG1 X10 Y10\nG92 E100\nG91\nG1 X1 E0.5", (10, 10, 0.2, 11, 10, 0.2)),
    ("M82 after G91 keeps E absolute", "G1 X10 Y10\nG92 E100\nG91\nM82\nG1 X1 E0.5", None),
    (
        "absolute E",
        "M82\nG92 E0\nG1 X10 Y0\nG1 X20 Y0 E2\nG1 X30 Y0 E1.5\nG1 X40 Y0 E3",
        (10, 0, 0.2, 40, 0, 0.2),
    ),
    ("G92 moves the origin", "G1 X10 Y10\nG92 X0 Y0\nG1 X5 Y5 E1", (0, 0, 0.2, 5, 5, 0.2)),
    ("G28 homes", "G1 X50 Y50\nG28 X\nG1 X5 E1", (0, 50, 0.2, 5, 50, 0.2)),
    ("G20 inches", "G20\nG1 X1 Y1\nG1 X2 Y1 E0.01\nG21\nG1 X60 Y25.4 E1", (25.4, 25.4, 0.2, 60, 25.4, 0.2)),
    # Spellings.
    ("words glued together", "G1X10Y10\nG1X20Y10E1", (10, 10, 0.2, 20, 10, 0.2)),
    ("line numbers and checksums", "N1 G1 X10 Y10*33\nN2 G1 X20 Y10 E1*17", (10, 10, 0.2, 20, 10, 0.2)),
    ("lower case and G01", "g01 x10 y10\ng01 x20 y10 e1", (10, 10, 0.2, 20, 10, 0.2)),
    ("space after the letter", "G1 X 10 Y 10\nG1 X 20 Y 10 E 1", (10, 10, 0.2, 20, 10, 0.2)),
    ("leading whitespace", "   G1 X10 Y10\n\tG1 X20 Y10 E1", (10, 10, 0.2, 20, 10, 0.2)),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in BOUNDS_CASES], ids=[c[0] for c in BOUNDS_CASES]
)
def test_bounds(analyze_text: Analyze, body: str, expected: Bounds) -> None:
    got = box(analyze_text(START + body + "\n"))
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("body", "length"),
    [
        ("M83\nG1 X1 E2\nG1 E-1\nG1 E1\nG1 X2 E3", 5.0),  # retract + unretract is not used twice
        ("M82\nG1 X1 E2\nG1 E1\nG1 E2\nG1 X2 E5", 5.0),
        ("M82\nG1 X1 E2\nG92 E0\nG1 X2 E3", 5.0),
        ("M83\nG20\nG1 X1 E0.1", 2.54),
    ],
)
def test_filament_from_moves_when_the_header_has_none(
    analyze_text: Analyze, body: str, length: float
) -> None:
    a = analyze_text(body)
    assert a.filament_length_mm == pytest.approx(length)
    # 1.75 mm filament, PLA density when the material is unknown
    assert a.filament_weight_g == pytest.approx(length * 3.14159 * 0.875**2 / 1000 * 1.24, abs=0.01)


def test_weight_uses_the_material_density(analyze_text: Analyze) -> None:
    body = "M83\nG1 X1 E1000\n"
    pla = analyze_text("; filament_type = PLA\n" + body).filament_weight_g
    abs_ = analyze_text("; filament_type = ABS\n" + body).filament_weight_g
    assert pla == pytest.approx(2.98, abs=0.01)
    assert abs_ == pytest.approx(2.50, abs=0.01)


def test_time_grows_with_distance_and_dwell(analyze_text: Analyze) -> None:
    short = analyze_text("G1 X10 F3000\n").own_time_estimate_s
    long = analyze_text("G1 X100 F3000\n").own_time_estimate_s
    dwell = analyze_text("G1 X100 F3000\nG4 S10\nG4 P500\n").own_time_estimate_s
    assert 0 < short < long
    assert dwell == pytest.approx(long + 10.5, abs=0.1)


def test_time_follows_acceleration(analyze_text: Analyze) -> None:
    # 100 mm at 100 mm/s: 1 s at infinite acceleration; a slow ramp adds to it.
    moves = "G1 X100 F6000\nG1 X0\n"
    slow = analyze_text("M204 S200\n" + moves).own_time_estimate_s
    fast = analyze_text("M204 S20000\n" + moves).own_time_estimate_s
    assert fast == pytest.approx(2.0, abs=0.1)
    assert slow > fast + 0.5


def test_slicer_estimate_reported_separately(analyze_text: Analyze) -> None:
    a = analyze_text(";TIME:1234\nG1 X100 F6000\n")
    assert a.estimated_time_s == 1234
    assert a.own_time_estimate_s < 10
    assert a.best_time_s == 1234
    assert analyze_text("G1 X100 F6000\n").best_time_s == analyze_text("G1 X100 F6000\n").own_time_estimate_s


PURGE = "G90\nM83\nG1 Z0.3\nG1 X0 Y-3\nG1 X60 Y-3 E5\n"
MODEL = "M83\nG1 X10 Y10\nG1 X20 Y10 E1\nG1 X20 Y20 E1\n"
SKIRT = "G1 X5 Y5\nG1 X25 Y5 E1\n"

# (id, G-code, expected model bounds as min/max x, y)
MODEL_CASES: list[tuple[str, str, tuple[float, float, float, float]]] = [
    ("no markers: model is everything", PURGE + MODEL, (0, -3, 60, 20)),
    ("PrusaSlicer custom start", ";TYPE:Custom\n" + PURGE + ";LAYER_CHANGE\n;TYPE:Perimeter\n" + MODEL,
     (10, 10, 20, 20)),
    ("PrusaSlicer skirt",
     ";TYPE:Custom\n" + PURGE + ";TYPE:Skirt/Brim\n" + SKIRT + ";TYPE:External perimeter\n" + MODEL,
     (10, 10, 20, 20)),
    ("PrusaSlicer custom end", ";TYPE:Perimeter\n" + MODEL + ";TYPE:Custom\nG1 X90 Y90 E1\n",
     (10, 10, 20, 20)),
    ("layer markers only", PURGE + ";LAYER_CHANGE\n" + MODEL, (10, 10, 20, 20)),
    ("Cura",
     PURGE + ";LAYER:0\n;TYPE:SKIRT\n" + SKIRT + ";TYPE:WALL-OUTER\n" + MODEL
     + ";TIME_ELAPSED:9\nG1 X90 E1\n",
     (10, 10, 20, 20)),
    ("Orca", PURGE + "; FEATURE: Skirt\n" + SKIRT + "; FEATURE: Outer wall\n" + MODEL, (10, 10, 20, 20)),
    ("prime tower", ";TYPE:Perimeter\n" + MODEL + ";TYPE:Wipe tower\nG1 X80 Y80 E1\n", (10, 10, 20, 20)),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_model_bounds(analyze_text: Analyze, text: str, expected: tuple[float, float, float, float]) -> None:
    a = analyze_text(text)
    assert a.model_bounds is not None and a.bounds is not None
    m = a.model_bounds
    assert (m.min_x, m.min_y, m.max_x, m.max_y) == pytest.approx(expected)
    assert a.bounds.contains(m)
