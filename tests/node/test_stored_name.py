"""The file name a fleet job gets on the printer: safe, numbered, and always plain ``.gcode``."""

from __future__ import annotations

import pytest

from fleet.node.rules import stored_name


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("benchy.gcode", "7-benchy.gcode"),
        ("BENCHY.GCODE", "7-BENCHY.gcode"),
        ("cube.bgcode", "7-cube.gcode"),
        ("plate.gcode.3mf", "7-plate.gcode"),
        ("part.3mf", "7-part.gcode"),
        ("old.gco", "7-old.gcode"),
        ("../../etc/passwd", "7-passwd.gcode"),
        ("C:\\Users\\ada\\my part (2).gcode", "7-my_part_2.gcode"),
        ("...", "7-job.gcode"),
        ("a" * 200 + ".gcode", "7-" + "a" * 80 + ".gcode"),
    ],
)
def test_stored_name_is_safe_and_plain_gcode(filename: str, expected: str) -> None:
    assert stored_name(7, filename) == expected
