"""The host side of the RepRap serial line protocol, as pure functions: framing lines and reading replies.

A host sends ``N<line> <command>*<checksum>``: the checksum is the XOR of every byte before ``*``.
Firmwares (Marlin, Prusa, RepRapFirmware, Klipper's pty) answer each line with ``ok`` and ask for a
line again with ``Resend: N`` (or ``rs N``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional, Union


def checksum(data: bytes) -> int:
    """XOR of every byte: the checksum a firmware checks after ``*``."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def strip_comment(line: str) -> str:
    """The command part of a G-code line: no ``;`` comment, no surrounding blanks.

    Parenthesised comments are left alone: firmwares disagree on them, and slicers do not emit them.
    """
    return line.split(";", 1)[0].strip()


def frame(number: int, command: str) -> bytes:
    """``N<number> <command>*<checksum>\\n`` as bytes (the command must already be stripped)."""
    body = f"N{number} {command}".encode("ascii", "replace")
    return body + b"*" + str(checksum(body)).encode() + b"\n"


def unframe(data: bytes) -> str:
    """The command of a line :func:`frame` made (no number, no checksum, no line ending)."""
    text = data.decode("ascii", "replace").rstrip("\r\n")
    body = text[: text.rfind("*")] if "*" in text else text
    return body.split(" ", 1)[1] if body.startswith("N") and " " in body else body


_LAST_LINE = re.compile(r"last\s*line\s*:?\s*(\d+)", re.IGNORECASE)


def last_line_of(message: str) -> Optional[int]:
    """The firmware's last accepted line number an error names (Marlin's ``Last Line: 12``), if any."""
    match = _LAST_LINE.search(message)
    return _line_number(match.group(1)) if match else None


# --- Replies ---------------------------------------------------------------------------------------

#: Heater readings as ``{"T0": (actual, target), "B": (actual, target)}``; a missing target is None.
Temperatures = Mapping[str, tuple[Optional[float], Optional[float]]]


class ReplyKind(str, Enum):
    """What a line from the firmware is."""

    OK = "ok"  # a line was taken (or, after an error, rejected: a resend request comes with it)
    RESEND = "resend"  # "Resend: N" / "rs N": send again from line N
    BUSY = "busy"  # the firmware is alive but working (long move, heating, waiting for the user)
    WAIT = "wait"  # idle and waiting for commands
    START = "start"  # the firmware has just (re)started
    TEMPERATURE = "temperature"  # an unsolicited temperature report (autoreport or M109/M190 waits)
    FIRMWARE = "firmware"  # M115's FIRMWARE_NAME line
    CAPABILITY = "capability"  # M115's "Cap:NAME:0|1" lines
    ERROR = "error"  # "Error:..." (see ErrorClass) and "!!" shutdowns
    ECHO = "echo"  # "echo:..." and Klipper's "// ..." information
    OTHER = "other"  # anything else (boot banners, garbage)


class ErrorClass(str, Enum):
    """How bad an error line is."""

    LINE = "line"  # the line was garbled on the way: a resend request follows
    COMMAND = "command"  # the firmware refused one command and carries on
    FATAL = "fatal"  # the firmware has stopped (thermal runaway, kill(), shutdown): stop at once


@dataclass(frozen=True)
class Reply:
    """One line from the firmware, parsed. Fields not relevant to ``kind`` keep their defaults."""

    kind: ReplyKind
    text: str
    #: OK: the line number ADVANCED_OK (``ok N12``) or Repetier (``ok 12``) names; RESEND: the line asked for.
    line: Optional[int] = None
    #: OK with ADVANCED_OK: free planner slots (P) and free command-buffer slots (B).
    planner_free: Optional[int] = None
    buffer_free: Optional[int] = None
    temperatures: Temperatures = field(default_factory=dict)
    error: Optional[ErrorClass] = None
    #: ERROR, ECHO, BUSY: the firmware's own words without the prefix.
    message: str = ""
    #: CAPABILITY: (name, enabled).
    capability: Optional[tuple[str, bool]] = None
    #: FIRMWARE (and Klipper's ``ok FIRMWARE_NAME:...``): M115's fields, e.g. ``{"FIRMWARE_NAME": "Marlin"}``.
    firmware: Mapping[str, str] = field(default_factory=dict)

    @property
    def fatal(self) -> bool:
        return self.error is ErrorClass.FATAL

    @property
    def advanced_ok(self) -> bool:
        """An ``ok`` in Marlin's ADVANCED_OK format (it reports free buffer slots)."""
        return self.kind is ReplyKind.OK and self.buffer_free is not None


#: Line numbers are 32-bit in every firmware: a run of more digits than this is line noise.
MAX_DIGITS = 18
_TEMPERATURE = re.compile(r"(?<![\w@])(T\d*|B|C|P|A|R)\s*:\s*(-?\d+(?:\.\d+)?)(?:\s*/\s*(-?\d+(?:\.\d+)?))?")
_RESEND = re.compile(r"^(?:resend|rs)\b\s*:?\s*N?\s*:?\s*(\d+)", re.IGNORECASE)
_ADVANCED_OK = re.compile(r"(?:^|\s)([NPB])(\d+)(?=\s|$)")
_REPETIER_OK = re.compile(r"^(\d+)$")
_CAPABILITY = re.compile(r"^Cap:\s*([A-Za-z0-9_]+)\s*:\s*([01])\s*$", re.IGNORECASE)
_FIRMWARE_KEY = re.compile(r"\b([A-Z][A-Z_]*[A-Z]):\s*")

#: Words that mark an error line as garbled-line trouble (a resend request comes with it).
_LINE_ERRORS = (
    "checksum mismatch",
    "line number is not",
    "no checksum",
    "no line number",
    "missing checksum",
    "missing linenumber",
    "wrong checksum",
    "format error",
    "expected line",
    "bad command checksum",  # RepRapFirmware
    "bad line number",  # RepRapFirmware
)
#: Errors after which the firmware carries on: it refused one command.
_COMMAND_ERRORS = (
    "unknown command",
    "bad command",
    "cold extrusion",
    "open failed",
    "cannot open",
    "no media",
    "sd init fail",
    "volume.init failed",
    "workdir open failed",
    "not sd printing",
    "invalid",
    "m303",
)


def parse_reply(raw: Union[str, bytes]) -> Reply:
    """Parse one line from the firmware. Never raises: unknown lines come back as ``OTHER``."""
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    text = raw.strip().replace("\x00", "")
    lower = text.lower()
    if lower == "ok" or lower.startswith(("ok ", "ok:", "ok\t")):
        return _parse_ok(text)
    match = _RESEND.match(text)
    if match:
        return Reply(ReplyKind.RESEND, text, line=_line_number(match.group(1)))
    if text.startswith("!!"):
        return Reply(ReplyKind.ERROR, text, error=ErrorClass.FATAL, message=text[2:].strip())
    if lower.startswith("error"):
        message = text[5:].lstrip(":").strip()
        return Reply(ReplyKind.ERROR, text, error=classify_error(message), message=message)
    body = text[5:].strip() if lower.startswith("echo:") else text
    if body.lower().startswith("busy:"):
        return Reply(ReplyKind.BUSY, text, message=body[5:].strip())
    if lower == "wait":
        return Reply(ReplyKind.WAIT, text)
    if lower == "start":
        return Reply(ReplyKind.START, text)
    if "FIRMWARE_NAME:" in text:
        return Reply(ReplyKind.FIRMWARE, text, firmware=parse_firmware_fields(text))
    match = _CAPABILITY.match(text)
    if match:
        return Reply(ReplyKind.CAPABILITY, text, capability=(match.group(1).upper(), match.group(2) == "1"))
    if lower.startswith("echo:") or text.startswith("//"):
        message = text.lstrip("/").strip() if text.startswith("//") else body
        return Reply(ReplyKind.ECHO, text, message=message)
    temperatures = parse_temperatures(text)
    if temperatures:
        return Reply(ReplyKind.TEMPERATURE, text, temperatures=temperatures)
    return Reply(ReplyKind.OTHER, text)


def _parse_ok(text: str) -> Reply:
    rest = text[2:].lstrip(" :\t")
    line = planner = buffer = None
    if _REPETIER_OK.match(rest):
        line = _line_number(rest)
    else:
        words = {key: _line_number(value) for key, value in _ADVANCED_OK.findall(rest)}
        if words.get("P") is not None and words.get("B") is not None:
            line, planner, buffer = words.get("N"), words["P"], words["B"]
    firmware = parse_firmware_fields(rest) if "FIRMWARE_NAME:" in rest else {}
    temperatures = {} if firmware else parse_temperatures(rest)
    return Reply(
        ReplyKind.OK,
        text,
        line=line,
        planner_free=planner,
        buffer_free=buffer,
        temperatures=temperatures,
        firmware=firmware,
    )


def parse_temperatures(text: str) -> dict[str, tuple[Optional[float], Optional[float]]]:
    """Heater readings in a report: Marlin/Prusa ``T:210.0 /210.0 B:60.0 /60.0 @:0``, ``T0:``/``T1:``,
    Klipper ``B:60.0 /60.0 T0:210.0 /210.0``, RepRapFirmware's ``T:`` lines.

    A bare ``T`` is the active tool: reported as ``T0`` unless the line also names ``T0``.
    Power (``@:``), wait timers (``W:``) and extruder indexes (``E:``) are not heaters.
    """
    readings: dict[str, tuple[Optional[float], Optional[float]]] = {}
    for name, actual, target in _TEMPERATURE.findall(text):
        reading = (_celsius(actual), _celsius(target) if target else None)
        if reading[0] is not None:
            readings.setdefault(name, reading)
    if not any(name.startswith("T") or name == "B" for name in readings):
        return {}  # a lone P: or A: is some other report (Prusa's M114 has none, but be strict)
    current = readings.pop("T", None)
    if current is not None and "T0" not in readings:
        readings["T0"] = current
    return readings


def _line_number(digits: str) -> Optional[int]:
    """A line number or slot count; None for a run of digits no firmware sends (line noise)."""
    return int(digits) if len(digits) <= MAX_DIGITS else None


def _celsius(text: str) -> Optional[float]:
    """A temperature; None for one of hundreds of digits (line noise), which would read as infinite."""
    value = float(text)
    return value if math.isfinite(value) else None


def parse_firmware_fields(text: str) -> dict[str, str]:
    """M115's ``KEY:value KEY:value`` line as a mapping (values may hold spaces)."""
    matches = list(_FIRMWARE_KEY.finditer(text))
    fields: dict[str, str] = {}
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        fields.setdefault(match.group(1), text[match.end() : end].strip())
    return fields


def classify_error(message: str) -> ErrorClass:
    """Which kind of trouble an ``Error:`` line reports: garbled line, refused command or a stop."""
    lower = message.lower()
    if any(words in lower for words in _LINE_ERRORS):
        return ErrorClass.LINE
    if any(words in lower for words in _COMMAND_ERRORS) and "stopped" not in lower and "halt" not in lower:
        return ErrorClass.COMMAND
    # Thermal runaway, MINTEMP/MAXTEMP, heating failed, kill() called, printer halted and anything
    # unknown: a firmware that says "Error" and is not understood is treated as stopped.
    return ErrorClass.FATAL
