"""The simulated firmware's pure core: checking received lines, the motion and heater models, replies.

No I/O and no clock here: every function takes the time it needs, so the device loop in
``simulator.py`` decides when things happen and these pieces decide what happens.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from typing import Optional

from fleet.serial.lineproto import checksum

AMBIENT_C = 20.0
TEMPERATURE_TOLERANCE_C = 1.0
HOMING_SPEED_MM_S = 50.0
HOMING_SETTLE_S = 0.5
DEFAULT_FEEDRATE_MM_MIN = 1500.0

RESEND = "Resend: {line}"
UNKNOWN_COMMAND = 'echo:Unknown command: "{command}"'
BUSY = "echo:busy: processing"
PAUSED = "echo:busy: paused for user"  # M0/M1/M600 waiting for the knob
KILLED = "Error:Printer halted. kill() called!"
THERMAL_RUNAWAY = "Error:Thermal Runaway, system stopped! Heater_ID: {heater}"


class LineError(Enum):
    """Why a numbered line was refused; the value is Marlin's message before the last line number."""

    CHECKSUM = "checksum mismatch"
    LINE_NUMBER = "Line Number is not Last Line Number+1"
    NO_CHECKSUM = "No Checksum with line number"

    def message(self, last_line: int) -> str:
        return f"Error:{self.value}, Last Line: {last_line}"


@dataclass(frozen=True)
class Received:
    """One received line after the framing check: the command, its line number, or why it was refused."""

    command: str
    number: Optional[int] = None
    error: Optional[LineError] = None


_LEADING_INT = re.compile(r"\s*(-?\d+)")


def _leading_int(text: str) -> int:
    """``strtol`` semantics: the integer at the start of ``text``, or 0 when there is none."""
    match = _LEADING_INT.match(text)
    return int(match.group(1)) if match else 0


def check_line(text: str, last_line: int) -> Received:
    """Check one line (comment already removed) the way Marlin does, given the last accepted line number.

    Lines without ``N`` are taken as they are. A numbered line must be ``last_line + 1`` unless it is an
    ``M110`` (whose own ``N`` parameter, if any, is the new number), and must end in a correct ``*``
    checksum. The line number is checked before the checksum, as Marlin does.
    """
    if not text.startswith("N"):
        star = text.find("*")
        return Received(command=(text if star < 0 else text[:star]).strip())
    is_m110 = "M110" in text
    number_at = 1
    if is_m110:
        second_n = text.find("N", 4)
        if second_n >= 0:
            number_at = second_n + 1
    number = _leading_int(text[number_at:])
    if number != last_line + 1 and not is_m110:
        return Received(command="", error=LineError.LINE_NUMBER)
    star = text.rfind("*")
    if star < 0:
        return Received(command="", error=LineError.NO_CHECKSUM)
    if _leading_int(text[star + 1 :]) != checksum(text[:star].encode("latin-1")):
        return Received(command="", error=LineError.CHECKSUM)
    body = re.sub(r"^N-?\d*\s*", "", text[:star])
    return Received(command=body.strip(), number=number)


_CODE = re.compile(r"([GMT])0*(\d+)(\.\d+)?", re.IGNORECASE)
_WORD = re.compile(r"([A-Z])\s*([-+]?(?:\d+\.?\d*|\.\d+))", re.IGNORECASE)


def command_code(command: str) -> str:
    """``"G1"`` for ``"G01 X5"``, ``"M104"`` for ``"m104 S200"``; the first word otherwise."""
    match = _CODE.match(command)
    if match is None:
        return command.split(" ", 1)[0].upper()
    return f"{match.group(1).upper()}{match.group(2)}{match.group(3) or ''}"


def words(command: str) -> dict[str, float]:
    """The numeric parameters after the code: ``{"X": 10.0, "F": 1200.0}``."""
    code = _CODE.match(command)
    rest = command[code.end() :] if code else command
    return {letter.upper(): float(value) for letter, value in _WORD.findall(rest)}


AXES = ("X", "Y", "Z", "E")


class Motion:
    """Where the head will be once every planned move has run, and how long each move takes."""

    def __init__(self) -> None:
        self.position = dict.fromkeys(AXES, 0.0)
        self.absolute = True
        self.absolute_e = True
        self.feedrate_mm_min = DEFAULT_FEEDRATE_MM_MIN

    def set_mode(self, code: str) -> None:
        """G90/G91 set every axis, M82/M83 only the extruder (as Marlin does)."""
        if code in ("G90", "G91"):
            self.absolute = self.absolute_e = code == "G90"
        elif code in ("M82", "M83"):
            self.absolute_e = code == "M82"

    def set_position(self, params: dict[str, float]) -> None:
        """G92: the current position is renamed, nothing moves."""
        chosen = [axis for axis in AXES if axis in params] or list(AXES)
        for axis in chosen:
            self.position[axis] = params.get(axis, 0.0)

    def move(self, code: str, params: dict[str, float]) -> float:
        """Plan a G0/G1/G2/G3 and return its duration in seconds at the programmed feed rate."""
        if params.get("F", 0.0) > 0:
            self.feedrate_mm_min = params["F"]
        start = dict(self.position)
        for axis in AXES:
            if axis in params:
                relative = not (self.absolute_e if axis == "E" else self.absolute)
                self.position[axis] = start[axis] + params[axis] if relative else params[axis]
        delta = {axis: self.position[axis] - start[axis] for axis in AXES}
        if code in ("G2", "G3"):
            planar = _arc_length(start, self.position, params, clockwise=code == "G2")
        else:
            planar = math.hypot(delta["X"], delta["Y"])
        distance = math.hypot(planar, delta["Z"]) or abs(delta["E"])
        return distance / (self.feedrate_mm_min / 60.0)

    def home(self, params: dict[str, float]) -> float:
        """G28: the named axes (all when none is named) go to 0; returns how long homing takes."""
        chosen = [axis for axis in ("X", "Y", "Z") if axis in params] or ["X", "Y", "Z"]
        travel = max(abs(self.position[axis]) for axis in chosen)
        for axis in chosen:
            self.position[axis] = 0.0
        return HOMING_SETTLE_S + travel / HOMING_SPEED_MM_S

    def report(self) -> str:
        """The M114 line."""
        x, y, z, e = (self.position[axis] for axis in AXES)
        return f"X:{x:.2f} Y:{y:.2f} Z:{z:.2f} E:{e:.2f} Count X:0 Y:0 Z:0"


def _arc_length(
    start: dict[str, float], end: dict[str, float], params: dict[str, float], clockwise: bool
) -> float:
    """Length in the XY plane of a G2/G3 arc given by its centre offset I/J (or, failing that, its chord)."""
    if "I" not in params and "J" not in params:
        return math.hypot(end["X"] - start["X"], end["Y"] - start["Y"])
    cx, cy = start["X"] + params.get("I", 0.0), start["Y"] + params.get("J", 0.0)
    radius = math.hypot(start["X"] - cx, start["Y"] - cy)
    a0 = math.atan2(start["Y"] - cy, start["X"] - cx)
    a1 = math.atan2(end["Y"] - cy, end["X"] - cx)
    sweep = (a0 - a1) if clockwise else (a1 - a0)
    sweep %= 2 * math.pi
    if sweep == 0.0:
        sweep = 2 * math.pi
    return radius * sweep


class Heater:
    """A heater whose temperature moves linearly towards its target (or to ambient when off)."""

    def __init__(self, rate_c_per_s: float) -> None:
        self._rate = rate_c_per_s
        self._since = 0.0
        self._start = AMBIENT_C
        self.target = 0.0

    def actual(self, now: float) -> float:
        goal = self.target if self.target > 0 else AMBIENT_C
        if math.isinf(self._rate):
            return goal
        step = self._rate * max(0.0, now - self._since)
        if self._start < goal:
            return min(goal, self._start + step)
        return max(goal, self._start - step)

    def set_target(self, now: float, target: float) -> None:
        self._start = self.actual(now)
        self._since = now
        self.target = max(0.0, target)

    def seconds_to_reach(self, now: float) -> float:
        """How long until the temperature is within the tolerance of its target (0 when off)."""
        if self.target <= 0 or math.isinf(self._rate):
            return 0.0
        gap = abs(self.target - self.actual(now)) - TEMPERATURE_TOLERANCE_C
        return max(0.0, gap) / self._rate

    def power(self, now: float) -> int:
        """The PWM value Marlin shows after ``@:``: full while heating, off otherwise."""
        return 127 if self.target > 0 and self.actual(now) < self.target - TEMPERATURE_TOLERANCE_C else 0


def temperature_report(hotend: Heater, bed: Heater, now: float) -> str:
    """``T:20.00 /0.00 B:20.00 /0.00 @:0 B@:0``, the body of M105's reply and of each auto-report."""
    return (
        f"T:{hotend.actual(now):.2f} /{hotend.target:.2f} B:{bed.actual(now):.2f} /{bed.target:.2f}"
        f" @:{hotend.power(now)} B@:{bed.power(now)}"
    )
