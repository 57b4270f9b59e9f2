"""Analyse a G-code file in one streaming pass: header, thumbnails, moves, time and safety.

Bounds
    ``bounds`` is the box around every extruding move: a G0/G1/G2/G3 with an X, Y or Z word whose E
    advances the filament (absolute or relative E, after G92 resets, in inches after G20). Both ends
    of the move count, and for arcs the points where the arc passes its circle's extremes.
    Firmware retraction (G10/G11) and E-only moves are not extrusion. This is the rule of OctoPrint's
    ``printing_area``, except that OctoPrint floors the lowest Z at the bed (0) and we do not.

``model_bounds``: the model alone
    Slicers mark what each stretch of G-code prints. Extrusion counts towards the model only inside
    a model feature: it does not before the first feature or layer marker (the start G-code with its
    purge line), nor inside the start/end custom G-code (PrusaSlicer ``;TYPE:Custom``), nor in
    skirts, brims, wipe/prime towers and purges (``;TYPE:Skirt/Brim``, Cura ``;TYPE:SKIRT``,
    Orca ``; FEATURE: Skirt``, Simplify3D ``; feature skirt``), nor after Cura's last
    ``;TIME_ELAPSED:`` (the end G-code). Files with layer markers but no feature markers count
    everything from the first layer marker on. Files with no markers at all: ``model_bounds = bounds``.

Time
    Our own estimate walks every move with a trapezoidal speed profile: acceleration from M204
    (print/travel, capped by M201), corner speed from M205's jerk, feed rates capped by M203, plus
    G4 dwells. Heating waits are not counted. It is an estimate; the slicer's is reported separately.

Size
    The module is a little over 500 lines because the per-line loop keeps its bounds and time updates
    inline, without a call per move: that is where its speed over OctoPrint's interpreter comes from
    (``bench/gcode_analysis.py``). Header, thumbnails, moves and safety rules live in their own modules.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import BinaryIO, Optional, Union

from ..errors import Invalid, TooLarge
from ..geometry import Box
from . import materials
from .header import LAYER, LAYER_END, MODEL_FEATURE, OTHER_FEATURE, CommentReader
from .intake import Decoded, LineReader, open_plain, size_text
from .moves import arc_center, arc_extremes, arc_sweep, move_time, split_command
from .results import Analysis
from .safety import DEFAULT_RULES, SafetyRules, SafetyScan
from .thumbnails import ThumbnailCollector

INCH = 25.4
DEFAULT_ACCEL = 1000.0  # mm/s², when the file sets none
DEFAULT_CORNER = 10.0  # mm/s, the speed a move starts and ends at (classic jerk)
DEFAULT_FEED = 50.0  # mm/s, until the file gives an F
_INF = math.inf


def analyze_path(
    path: Union[str, os.PathLike[str]],
    *,
    rules: SafetyRules = DEFAULT_RULES,
    material: Optional[str] = None,
    max_bytes: Optional[int] = None,
    plate: Optional[int] = None,
) -> Analysis:
    """Analyse the G-code file at ``path`` (see :func:`analyze_stream`)."""
    with open(path, "rb") as stream:
        return analyze_stream(
            stream,
            rules=rules,
            material=material,
            max_bytes=max_bytes,
            total_size=os.fstat(stream.fileno()).st_size,
            plate=plate,
        )


def analyze_stream(
    stream: BinaryIO,
    *,
    rules: SafetyRules = DEFAULT_RULES,
    material: Optional[str] = None,
    max_bytes: Optional[int] = None,
    total_size: Optional[int] = None,
    plate: Optional[int] = None,
) -> Analysis:
    """Analyse G-code read from a binary stream, in one pass with memory flat in the file's size.

    ``material`` overrides the file's own for the temperature checks; ``plate`` picks the plate of a
    sliced 3MF archive with several (see :mod:`fleet.gcode.threemf`). Raises
    :class:`fleet.errors.TooLarge` beyond ``max_bytes`` and :class:`fleet.errors.Invalid` when the
    stream is not plain-text G-code or holds no commands.
    """
    if max_bytes is not None and total_size is not None and total_size > max_bytes:
        # Fail before reading a byte; LineReader enforces the same limit on streams of unknown size.
        raise TooLarge(f"the file is larger than this lab's limit of {size_text(max_bytes)}", field="file")
    plain = open_plain(stream, plate=plate)
    if isinstance(plain, Decoded):  # a .bgcode or .gcode.3mf: its size on disk says nothing about the text
        total_size = None
    reader = LineReader(plain, max_bytes=max_bytes, max_line=rules.max_line_length, total_size=total_size)
    comments = CommentReader(ThumbnailCollector())
    safety = SafetyScan(rules)
    motion = _scan(reader, comments, safety)
    if motion.commands == 0:
        raise Invalid(
            "the file holds no G-code commands (it is empty, only comments, or not G-code at all): "
            "export the model from your slicer as plain-text G-code (.gcode)",
            field="file",
        )
    file_material = materials.normalise(comments.material)
    checked_material = materials.normalise(material) or file_material
    diameter = comments.filament_diameter or materials.DEFAULT_FILAMENT_DIAMETER_MM
    length = comments.filament_mm if comments.filament_mm is not None else motion.filament_mm
    weight = comments.filament_g
    if weight is None:
        density = comments.density or materials.density(checked_material)
        weight = materials.weight_g(length, diameter, density)
    _check_finite(motion.time_s, "the print time")
    _check_finite(length, "the filament length")
    _check_finite(weight, "the filament weight")
    for box in (motion.bounds, motion.model_bounds):
        if box is not None:
            for value in box.to_dict().values():
                _check_finite(value, "the space the print takes")
    return Analysis(
        slicer=comments.slicer,
        flavour=comments.flavour,
        estimated_time_s=comments.estimated_time_s,
        own_time_estimate_s=round(motion.time_s, 1),
        filament_length_mm=round(length, 2),
        filament_weight_g=round(weight, 2),
        material=checked_material,
        nozzle_diameter=comments.nozzle,
        layer_height=comments.layer_height,
        filament_diameter=diameter,
        thumbnails=tuple(comments.thumbs.thumbnails),
        bounds=motion.bounds,
        model_bounds=motion.model_bounds,
        line_count=reader.lines,
        size_bytes=reader.size,
        findings=safety.finish(checked_material),
        findings_suppressed=safety.suppressed,
        bed_temperature_c=safety.bed_max_c or None,
        tools=motion.tools,
        chamber_temperature_c=safety.chamber_max_c or None,
    )


@dataclass
class _Motion:
    """What the pass over the moves found."""

    commands: int
    time_s: float
    filament_mm: float
    bounds: Optional[Box]
    model_bounds: Optional[Box]
    #: How many tools the file uses: its highest tool index + 1 (1 when it never picks one).
    tools: int = 1


def _check_finite(value: float, what: str) -> None:
    if not math.isfinite(value):
        raise Invalid(
            f"{what} comes out beyond any real print: a coordinate, speed or extrusion in the file is out "
            "of any printer's range, or not a number; check the file's moves",
            field="file",
        )


def _box(values: list[float]) -> Optional[Box]:
    return None if values[0] == _INF else Box(*values)


def _scan(reader: LineReader, comments: CommentReader, safety: SafetyScan) -> _Motion:
    """The hot loop. State lives in local variables and plain G0/G1 lines take a fast path on bytes;
    everything else goes through :func:`split_command`. Keep this tight: it runs once per line."""
    sqrt = math.sqrt
    feed_comment = comments.feed
    z_floor = safety.z_floor
    x = y = z = 0.0
    e_pos = 0.0  # the E coordinate, as the firmware sees it
    e_net = e_max = 0.0  # net filament pushed so far, and its high-water mark (= filament used)
    rel_xyz = rel_e = False
    scale = 1.0
    absolute_mm = True  # not rel_xyz and scale == 1.0
    feed = DEFAULT_FEED
    speed_cap = _INF
    accel_print = accel_travel = DEFAULT_ACCEL
    accel_cap = _INF
    corner = DEFAULT_CORNER
    ux = uy = 0.0  # direction of the previous move, for the speed at the joint
    time_s = 0.0
    commands = 0
    # Bounds as [min_x, min_y, min_z, max_x, max_y, max_z]; *_at_pos: the current position is inside already.
    bx0 = by0 = bz0 = _INF
    bx1 = by1 = bz1 = -_INF
    mx0 = my0 = mz0 = _INF
    mx1 = my1 = mz1 = -_INF
    b_at_pos = m_at_pos = False
    model_on = features_seen = layers_seen = False
    lineno = 0
    top_tool = 0  # the highest tool (extruder) index the file selects: T1, or M104/M109 T1

    try:
        for lines in reader:
            for raw in lines:
                lineno += 1
                line = raw
                head = line[:3]
                if head == b"G1 " or head == b"G0 ":
                    semi = line.find(b";")
                    words = (line[:semi] if semi >= 0 else line).split()
                    tx, ty, tz = x, y, z
                    moved = False
                    ev = None
                    try:
                        if len(words) == 4 and absolute_mm:
                            # "G1 X.. Y.. E..": most lines of every slicer's output, so no loop for them.
                            _, wx, wy, we = words
                            if wx[0] == 88 and wy[0] == 89 and we[0] == 69:
                                tx = float(wx[1:])
                                ty = float(wy[1:])
                                ev = float(we[1:])
                                moved = True
                                words = []
                        for w in words:
                            k = w[0]
                            if k == 88:  # X
                                tx = float(w[1:]) * scale
                                if rel_xyz:
                                    tx += x
                                moved = True
                            elif k == 89:  # Y
                                ty = float(w[1:]) * scale
                                if rel_xyz:
                                    ty += y
                                moved = True
                            elif k == 69:  # E
                                ev = float(w[1:]) * scale
                            elif k == 90:  # Z
                                tz = float(w[1:]) * scale
                                if rel_xyz:
                                    tz += z
                                moved = True
                                if tz < z_floor:
                                    safety.z_below(lineno, words[0].decode(), tz)
                            elif k == 70:  # F
                                f = float(w[1:])
                                if f > 0.0:
                                    feed = f * scale / 60.0
                    except ValueError:
                        command, params = split_command(line[:semi] if semi >= 0 else line)
                        tx, ty, tz, moved, ev, feed = _linear_target(params, x, y, z, rel_xyz, scale, feed)
                        if tz < z_floor and "Z" in params:
                            safety.z_below(lineno, command, tz)
                    commands += 1
                else:
                    first = line[:1]
                    if first == b";":
                        region = feed_comment(line[1:])
                        if region:
                            if region == MODEL_FEATURE:
                                features_seen = model_on = True
                                m_at_pos = False
                            elif region == OTHER_FEATURE:
                                features_seen = True
                                model_on = False
                            elif region == LAYER:
                                layers_seen = True
                                if not features_seen and not model_on:
                                    model_on = True
                                    m_at_pos = False
                            elif region == LAYER_END:
                                model_on = False
                        continue
                    semi = line.find(b";")
                    code = (line[:semi] if semi >= 0 else line).strip()
                    if not code:
                        continue
                    command, params = split_command(code)
                    if not command:
                        continue
                    if command[0] in "GMT" and command[1:2].isdigit():
                        commands += 1
                    safety.command(lineno, command, params)
                    if command == "G1" or command == "G0":
                        tx, ty, tz, moved, ev, feed = _linear_target(params, x, y, z, rel_xyz, scale, feed)
                        if tz < z_floor and "Z" in params:
                            safety.z_below(lineno, command, tz)
                    elif command == "G2" or command == "G3":
                        tx, ty, tz, moved, ev, feed = _linear_target(params, x, y, z, rel_xyz, scale, feed)
                        if tz < z_floor and "Z" in params:
                            safety.z_below(lineno, command, tz)
                        de = 0.0
                        if ev is not None:
                            de = ev if rel_e else ev - e_pos
                            e_pos += de
                            e_net += de
                            if e_net > e_max:
                                e_max = e_net
                        clockwise = command == "G2"
                        r = params.get("R")
                        i, j = params.get("I", 0.0) * scale, params.get("J", 0.0) * scale
                        center = arc_center(x, y, tx, ty, clockwise, i, j, None if r is None else r * scale)
                        points = [(tx, ty)]
                        length = sqrt((tx - x) ** 2 + (ty - y) ** 2 + (tz - z) ** 2)
                        if center is not None:
                            cx, cy = center
                            radius = math.hypot(x - cx, y - cy)
                            sweep = arc_sweep(x, y, tx, ty, cx, cy, clockwise)
                            points += arc_extremes(x, y, cx, cy, radius, sweep, clockwise)
                            length = math.hypot(sweep * radius, tz - z)
                        if de > 0.0 and (moved or center is not None):
                            low_z, high_z = min(z, tz), max(z, tz)
                            pts = [(x, y), *points]
                            bx0 = min(bx0, *(p[0] for p in pts))
                            bx1 = max(bx1, *(p[0] for p in pts))
                            by0 = min(by0, *(p[1] for p in pts))
                            by1 = max(by1, *(p[1] for p in pts))
                            bz0 = min(bz0, low_z)
                            bz1 = max(bz1, high_z)
                            b_at_pos = True
                            if model_on:
                                mx0 = min(mx0, *(p[0] for p in pts))
                                mx1 = max(mx1, *(p[0] for p in pts))
                                my0 = min(my0, *(p[1] for p in pts))
                                my1 = max(my1, *(p[1] for p in pts))
                                mz0 = min(mz0, low_z)
                                mz1 = max(mz1, high_z)
                                m_at_pos = True
                        elif length > 0.0:
                            b_at_pos = m_at_pos = False
                        speed = feed if feed < speed_cap else speed_cap
                        accel = accel_print if de > 0.0 else accel_travel
                        time_s += move_time(length, speed, accel if accel < accel_cap else accel_cap, corner)
                        x, y, z = tx, ty, tz
                        continue
                    else:
                        p = params.get
                        if command == "G92":
                            if not params:
                                x = y = z = e_pos = 0.0
                            else:
                                x = p("X", x / scale) * scale
                                y = p("Y", y / scale) * scale
                                z = p("Z", z / scale) * scale
                                e_pos = p("E", e_pos / scale) * scale
                            if not params or "X" in params or "Y" in params or "Z" in params:
                                b_at_pos = m_at_pos = False
                        elif command == "G90":
                            rel_xyz = rel_e = False
                            absolute_mm = scale == 1.0
                        elif command == "G91":
                            rel_xyz = rel_e = True  # as in Marlin: E follows until an M82/M83
                            absolute_mm = False
                        elif command == "M82":
                            rel_e = False
                        elif command == "M83":
                            rel_e = True
                        elif command == "G28":
                            axes = [a for a in "XYZ" if a in params]
                            if not axes:
                                x = y = z = 0.0
                            if "X" in axes:
                                x = 0.0
                            if "Y" in axes:
                                y = 0.0
                            if "Z" in axes:
                                z = 0.0
                            b_at_pos = m_at_pos = False
                        elif command == "G20":
                            scale = INCH
                            absolute_mm = False
                        elif command == "G21":
                            scale = 1.0
                            absolute_mm = not rel_xyz
                        elif command == "G4":
                            time_s += _positive(p("S")) + _positive(p("P")) / 1000.0
                        elif command == "M204":
                            both = p("S")
                            if both is not None and both > 0:
                                accel_print = accel_travel = both
                            accel_print = _pick(p("P"), accel_print)
                            accel_travel = _pick(p("T"), accel_travel)
                        elif command == "M201":
                            limits = [v for v in (p("X"), p("Y")) if v is not None and v > 0]
                            if limits:
                                accel_cap = min(limits)
                        elif command == "M203":
                            limits = [v for v in (p("X"), p("Y")) if v is not None and v > 0]
                            if limits:
                                # Marlin takes mm/s, RepRapFirmware mm/min: no printer moves at 1000 mm/s.
                                speed_cap = min(limits) if min(limits) < 1000 else min(limits) / 60.0
                        elif command == "M205":
                            jerks = [v for v in (p("X"), p("Y")) if v is not None and v > 0]
                            if jerks:
                                corner = min(jerks)
                        elif command[0] == "T":
                            # split_command spells a tool change "T1" (Klipper words start with a letter).
                            tool = _tool(command[1:])
                            if tool > top_tool:
                                top_tool = tool
                        elif command == "M104" or command == "M109":
                            tool = _tool(p("T"))
                            if tool > top_tool:
                                top_tool = tool
                        continue

                # A linear move (G0/G1) to (tx, ty, tz), maybe extruding.
                de = 0.0
                if ev is not None:
                    de = ev if rel_e else ev - e_pos
                    e_pos += de
                    e_net += de
                    if e_net > e_max:
                        e_max = e_net
                dx = tx - x
                dy = ty - y
                dz = tz - z
                dist = sqrt(dx * dx + dy * dy + dz * dz)
                if de > 0.0 and moved:
                    if not b_at_pos:
                        if x < bx0:
                            bx0 = x
                        if x > bx1:
                            bx1 = x
                        if y < by0:
                            by0 = y
                        if y > by1:
                            by1 = y
                        if z < bz0:
                            bz0 = z
                        if z > bz1:
                            bz1 = z
                        b_at_pos = True
                    if tx < bx0:
                        bx0 = tx
                    elif tx > bx1:
                        bx1 = tx
                    if ty < by0:
                        by0 = ty
                    elif ty > by1:
                        by1 = ty
                    if tz < bz0:
                        bz0 = tz
                    elif tz > bz1:
                        bz1 = tz
                    if model_on:
                        if not m_at_pos:
                            if x < mx0:
                                mx0 = x
                            if x > mx1:
                                mx1 = x
                            if y < my0:
                                my0 = y
                            if y > my1:
                                my1 = y
                            if z < mz0:
                                mz0 = z
                            if z > mz1:
                                mz1 = z
                            m_at_pos = True
                        if tx < mx0:
                            mx0 = tx
                        elif tx > mx1:
                            mx1 = tx
                        if ty < my0:
                            my0 = ty
                        elif ty > my1:
                            my1 = ty
                        if tz < mz0:
                            mz0 = tz
                        elif tz > mz1:
                            mz1 = tz
                    accel = accel_print if accel_print < accel_cap else accel_cap
                elif dist > 0.0:
                    b_at_pos = m_at_pos = False
                    accel = accel_travel if accel_travel < accel_cap else accel_cap
                else:
                    if de != 0.0:
                        time_s += abs(de) / feed
                    continue
                # move_time(), inlined: this runs for nearly every line of a file.
                speed = feed if feed < speed_cap else speed_cap
                # Straight-on moves keep their speed through the joint; a sharp turn slows to the corner
                # speed.
                cos = (dx * ux + dy * uy) / dist
                ux = dx / dist
                uy = dy / dist
                # Classic jerk: the velocity may change by ``corner`` at once, 2·v·sin(θ/2) at a turn of θ.
                turn = 2.0 - 2.0 * cos
                v0 = corner / sqrt(turn) if turn > 1e-12 else speed
                if v0 > speed:
                    v0 = speed
                ramp = (speed * speed - v0 * v0) / accel
                if dist >= ramp:
                    time_s += (dist - ramp) / speed + 2.0 * (speed - v0) / accel
                else:
                    time_s += 2.0 * (sqrt(v0 * v0 + accel * dist) - v0) / accel
                x = tx
                y = ty
                z = tz
    except (OverflowError, ZeroDivisionError):
        # Numbers far beyond any printer (a feed rate of 1e-320, an arc of radius 1e200) overflow the
        # arithmetic: refuse the file at that line instead of failing inside the analysis.
        raise Invalid(
            f"line {lineno} holds a number out of any printer's range (a coordinate, speed or extrusion), "
            "so the file cannot be measured: check that line",
            field="file",
        ) from None

    bounds = _box([bx0, by0, bz0, bx1, by1, bz1])
    model_bounds = _box([mx0, my0, mz0, mx1, my1, mz1]) if features_seen or layers_seen else bounds
    return _Motion(commands, time_s, e_max, bounds, model_bounds, top_tool + 1)


#: A tool index past this is not a real printer's (protocol.MAX_EXTRUDERS is 16): ignored, not counted.
_MAX_TOOL = 63


def _tool(value: object) -> int:
    """The tool index of ``T1``'s ``"1"`` or an M104's T parameter; 0 when there is none or it is nonsense."""
    try:
        tool = int(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0
    return tool if 0 <= tool <= _MAX_TOOL else 0


def _linear_target(
    params: dict[str, float], x: float, y: float, z: float, rel: bool, scale: float, feed: float
) -> tuple[float, float, float, bool, Optional[float], float]:
    """Where a G0/G1/G2/G3 given as parsed words goes: (x, y, z, moved, e word, feed in mm/s)."""
    moved = False
    target = [x, y, z]
    for index, axis in enumerate("XYZ"):
        value = params.get(axis)
        if value is not None and not math.isnan(value):
            target[index] = value * scale + (target[index] if rel else 0.0)
            moved = True
    e = params.get("E")
    if e is not None and math.isnan(e):
        e = None
    f = params.get("F")
    if f is not None and f > 0:
        feed = f * scale / 60.0
    return target[0], target[1], target[2], moved, None if e is None else e * scale, feed


def _positive(value: Optional[float]) -> float:
    return value if value is not None and value > 0 else 0.0


def _pick(value: Optional[float], current: float) -> float:
    return value if value is not None and value > 0 else current
