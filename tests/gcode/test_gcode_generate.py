"""Our generator, thumbnails, and the analysis's JSON form."""

from __future__ import annotations

import base64
import json
from typing import Callable

import pytest

from fleet.errors import Invalid
from fleet.gcode import Analysis, Thumbnail
from fleet.gcode.generate import generate_box

Analyze = Callable[..., Analysis]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def thumbnail_block(kind: str, width: int, height: int, data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    rows = [encoded[i : i + 78] for i in range(0, len(encoded), 78)]
    tag = "thumbnail" if kind == "PNG" else f"thumbnail_{kind}"
    body = "\n".join(f"; {row}" for row in rows)
    return f";\n; {tag} begin {width}x{height} {len(encoded)}\n{body}\n; {tag} end\n;\n"


def test_generated_box_is_recognised(analyze_text: Analyze) -> None:
    text = generate_box(30, 20, 1, origin=(50, 60), material="PETG")
    a = analyze_text(text)
    assert a.slicer is not None and str(a.slicer) == "CrowdFab generator 0.1"
    assert a.material == "PETG" and a.nozzle_diameter == 0.4 and a.layer_height == 0.2
    assert a.findings == ()
    assert a.model_bounds is not None and a.bounds is not None
    m = a.model_bounds
    assert (m.min_x, m.min_y, m.max_x, m.max_y, m.max_z) == pytest.approx((50, 60, 80, 80, 1.0))
    assert a.bounds.min_y == pytest.approx(55)  # the purge line
    assert a.estimated_time_s is not None and a.own_time_estimate_s == pytest.approx(
        a.estimated_time_s, rel=0.3
    )


def test_header_figures_match_the_moves(analyze_text: Analyze) -> None:
    with_header = analyze_text(generate_box())
    without = analyze_text(generate_box(header="none"))
    absolute = analyze_text(generate_box(header="none", relative_e=False))
    assert without.slicer is None and without.estimated_time_s is None
    # the header's figure is what the moves push, measured either way
    assert without.filament_length_mm == pytest.approx(with_header.filament_length_mm, abs=0.01)
    assert absolute.filament_length_mm == pytest.approx(without.filament_length_mm, abs=0.01)
    assert absolute.bounds == without.bounds


def test_no_markers_means_model_is_everything(analyze_text: Analyze) -> None:
    a = analyze_text(generate_box(markers=False, header="none"))
    assert a.model_bounds == a.bounds


def test_arcs_and_line_endings(analyze_text: Analyze) -> None:
    text = generate_box(arcs=True, line_ending="\r\n")
    assert "\r\nG3 " in text
    a = analyze_text(text)
    assert a.model_bounds is not None
    assert (a.model_bounds.min_x, a.model_bounds.max_x) == pytest.approx((100, 120))


def test_extra_lines_land_on_their_line_numbers() -> None:
    lines = generate_box(extra_lines={1: "M117 first", 7: "M502", 9: "M600"}).splitlines()
    assert (lines[0], lines[6], lines[8]) == ("M117 first", "M502", "M600")
    with pytest.raises(ValueError, match="start at 1"):
        generate_box(extra_lines={0: "M502"})


def test_big_files(analyze_text: Analyze) -> None:
    text = generate_box(100, 100, 10, infill=True)
    assert len(text.splitlines()) > 20_000
    assert analyze_text(text).line_count == len(text.splitlines())


def test_thumbnails(analyze_text: Analyze) -> None:
    text = (
        thumbnail_block("PNG", 16, 16, PNG)
        + thumbnail_block("JPG", 32, 24, b"\xff\xd8\xff" + bytes(30))
        + thumbnail_block("QOI", 8, 8, b"qoif" + bytes(20))
        + "; thumbnail begin 64x64 12\n; !!!!not base64!!!!\n; thumbnail end\n"
        + thumbnail_block("PNG", 300, 300, PNG * 20_000)  # 1.3 MB encoded: skipped, not held
        + "".join(thumbnail_block("PNG", n, n, PNG) for n in (40, 50, 60))
        + "G28\n"
    )
    a = analyze_text(text)
    assert [(t.format, t.width, t.height) for t in a.thumbnails] == [
        ("PNG", 16, 16),
        ("JPG", 32, 24),
        ("QOI", 8, 8),
        ("PNG", 40, 40),
    ]
    assert a.thumbnails[0].data == PNG
    assert a.findings == () and a.bounds is None


def test_analysis_json_round_trip(analyze_text: Analyze) -> None:
    a = analyze_text(thumbnail_block("PNG", 16, 16, PNG) + generate_box(extra_lines={20: "M502", 21: "M600"}))
    data = json.loads(json.dumps(a.to_dict()))
    assert data["thumbnails"][0]["data"] == base64.b64encode(PNG).decode()
    assert data["refused"] is True and data["best_time_s"] == a.estimated_time_s
    assert Analysis.from_dict(data) == a
    assert Thumbnail.from_dict(data["thumbnails"][0]).data == PNG


@pytest.mark.parametrize(
    "broken",
    [
        None,
        [],
        {"own_time_estimate_s": "soon"},
        {"thumbnails": [{"width": 1, "height": 1, "format": "PNG", "data": "%%"}]},
    ],
)
def test_analysis_from_bad_json(analyze_text: Analyze, broken: object) -> None:
    data = analyze_text(generate_box()).to_dict()
    if isinstance(broken, dict):
        data.update(broken)
        broken = data
    with pytest.raises(Invalid):
        Analysis.from_dict(broken)
