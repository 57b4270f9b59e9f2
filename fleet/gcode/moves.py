"""Move geometry and timing: parameter words, arc extents, and a trapezoidal time model."""

from __future__ import annotations

import math
import re
from typing import Optional

# No exponents: in "X10E1" the E is the extruder's word, not "10e1".
_WORD_RE = re.compile(rb"([A-Z])\s*([-+]?(?:\d+\.?\d*|\.\d+))?")
_TAU = 2.0 * math.pi
# Angles where a circle reaches its extreme in x or y: +x, +y, -x, -y.
_QUADRANTS = ((0.0, 1.0, 0.0), (math.pi / 2, 0.0, 1.0), (math.pi, -1.0, 0.0), (1.5 * math.pi, 0.0, -1.0))


def split_command(code: bytes) -> tuple[str, dict[str, float]]:
    """``b"G1 X10 Y-2.5 E.4"`` → ``("G1", {"X": 10.0, "Y": -2.5, "E": 0.4})``.

    ``code`` is the line without its comment. Line numbers (``N12``) and checksums (``*71``) are
    dropped, ``G01`` becomes ``G1``, and words may be glued together (``G1X10Y20``). An extended
    (Klipper) command such as ``SAVE_CONFIG`` comes back upper-cased with no parameters.
    """
    code = code.split(b"*", 1)[0].strip().upper()
    if code.startswith(b"N"):
        parts = code.split(None, 1)
        code = parts[1] if len(parts) > 1 and parts[0][1:].isdigit() else code
    if not code:
        return "", {}
    head = code[:1]
    if head in (b"G", b"M", b"T") and code[1:2].isdigit():
        end = 1
        while end < len(code) and (code[end : end + 1].isdigit() or code[end : end + 1] == b"."):
            end += 1
        number, dot, fraction = code[1:end].decode("ascii").partition(".")
        # As int() would, without its limit on digits: "G0001" is G1, and a thousand digits stay text.
        command = f"{head.decode('ascii')}{number.lstrip('0') or '0'}{dot}{fraction}"
        params: dict[str, float] = {}
        for letter, value in _WORD_RE.findall(code[end:]):
            if value:
                try:
                    params[letter.decode("ascii")] = float(value)
                except ValueError:  # pragma: no cover - the pattern only matches numbers
                    continue
            else:
                params.setdefault(letter.decode("ascii"), math.nan)
        return command, params
    word = code.split(None, 1)[0]
    return word.decode("utf-8", "replace"), {}


def arc_center(
    x0: float, y0: float, x1: float, y1: float, clockwise: bool, i: float, j: float, r: Optional[float]
) -> Optional[tuple[float, float]]:
    """The centre of a G2/G3 arc from (x0, y0) to (x1, y1), by I/J offsets or by radius R.

    With R, the centre lies on the chord's perpendicular bisector; a positive R takes the short way
    round (less than half a circle), a negative R the long way, as in Marlin and RepRapFirmware.
    """
    if r is None:
        return (x0 + i, y0 + j)
    dx, dy = x1 - x0, y1 - y0
    chord = math.hypot(dx, dy)
    if chord == 0.0 or r == 0.0:
        return None
    half = chord / 2.0
    h = math.sqrt(max(r * r - half * half, 0.0))
    # Counter-clockwise short arcs have their centre to the left of the chord.
    side = 1.0 if (not clockwise) != (r < 0) else -1.0
    mx, my = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return (mx - side * h * dy / chord, my + side * h * dx / chord)


def arc_sweep(x0: float, y0: float, x1: float, y1: float, cx: float, cy: float, clockwise: bool) -> float:
    """The angle swept from start to end around the centre, in the arc's direction; a closed arc is 2π."""
    a0 = math.atan2(y0 - cy, x0 - cx)
    a1 = math.atan2(y1 - cy, x1 - cx)
    sweep = (a0 - a1) % _TAU if clockwise else (a1 - a0) % _TAU
    return _TAU if sweep < 1e-9 else sweep


def arc_extremes(
    x0: float, y0: float, cx: float, cy: float, radius: float, sweep: float, clockwise: bool
) -> list[tuple[float, float]]:
    """The points where the arc crosses the circle's leftmost, rightmost, top and bottom."""
    a0 = math.atan2(y0 - cy, x0 - cx)
    points = []
    for angle, ux, uy in _QUADRANTS:
        offset = (a0 - angle) % _TAU if clockwise else (angle - a0) % _TAU
        if offset <= sweep:
            points.append((cx + ux * radius, cy + uy * radius))
    return points


def move_time(distance: float, speed: float, accel: float, corner: float) -> float:
    """Seconds to move ``distance`` mm at ``speed`` mm/s, speeding up and slowing down at ``accel``
    mm/s² from and to ``corner`` mm/s (a trapezoid, or a triangle when the move is too short)."""
    if distance <= 0.0 or speed <= 0.0:
        return 0.0
    v0 = corner if corner < speed else speed
    ramp = (speed * speed - v0 * v0) / accel  # distance spent speeding up plus slowing down
    if distance >= ramp:
        return (distance - ramp) / speed + 2.0 * (speed - v0) / accel
    peak = math.sqrt(v0 * v0 + accel * distance)
    return 2.0 * (peak - v0) / accel
