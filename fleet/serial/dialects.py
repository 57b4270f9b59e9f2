"""How each firmware family words its replies, as data: the simulator speaks them, the tests read them.

The lines follow each firmware's documented serial behaviour (Marlin's G-code and host-protocol
documentation, Prusa-Firmware's, RepRapFirmware's Marlin emulation, Smoothieware's): the forms of
``ok``, resend requests, line errors, busy and ``wait`` lines, the boot line and ``M115``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Dialect:
    """One firmware family's reply forms. ``{line}`` is a line number, ``{last}`` the last good one."""

    name: str
    firmware_line: str  # M115's first line
    capabilities: tuple[str, ...]  # the Cap: names it reports (ADVANCED_OK and AUTOREPORT_TEMP set apart)
    resend: str = "Resend: {line}"
    checksum_error: str = "Error:checksum mismatch, Last Line: {last}"
    line_number_error: str = "Error:Line Number is not Last Line Number+1, Last Line: {last}"
    no_checksum_error: str = "Error:No Checksum with line number, Last Line: {last}"
    busy: Optional[str] = "echo:busy: processing"  # None: no busy protocol
    boot: tuple[str, ...] = ("start",)
    wait_when_idle: bool = False  # Marlin 1.1 with NO_TIMEOUTS: "wait" while idle
    #: What M0/M1 and a filament change (M600) print while they wait for the user's click (None: silent).
    paused: Optional[str] = "echo:busy: paused for user"
    reports_capabilities: bool = True
    heating_report: str = " {report} W:?"  # the line M109/M190 print each second while they wait

    def error(self, kind: str, last: int) -> str:
        template = {
            "checksum": self.checksum_error,
            "line_number": self.line_number_error,
            "no_checksum": self.no_checksum_error,
        }[kind]
        return template.format(last=last)


MARLIN_2 = Dialect(
    name="marlin2",
    firmware_line=(
        "FIRMWARE_NAME:Marlin 2.1.2.1 (Jun 18 2023 12:00:00) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin"
        " PROTOCOL_VERSION:1.0 MACHINE_TYPE:3D Printer EXTRUDER_COUNT:1"
        " UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff"
    ),
    capabilities=("SERIAL_XON_XOFF", "BINARY_FILE_TRANSFER", "EEPROM", "BUSY_PROTOCOL", "EMERGENCY_PARSER"),
)
MARLIN_1 = Dialect(
    name="marlin1",
    firmware_line=(
        "FIRMWARE_NAME:Marlin 1.1.9 (Github) SOURCE_CODE_URL:https://github.com/MarlinFirmware/Marlin"
        " PROTOCOL_VERSION:1.0 MACHINE_TYPE:3D Printer EXTRUDER_COUNT:1"
        " UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff"
    ),
    capabilities=("EEPROM", "BUSY_PROTOCOL", "EMERGENCY_PARSER"),
    wait_when_idle=True,
)
PRUSA_MK3 = Dialect(
    name="prusa",
    firmware_line=(
        "FIRMWARE_NAME:Prusa-Firmware 3.13.2 based on Marlin"
        " FIRMWARE_URL:https://github.com/prusa3d/Prusa-Firmware PROTOCOL_VERSION:1.0"
        " MACHINE_TYPE:Prusa i3 MK3S EXTRUDER_COUNT:1 UUID:00000000-0000-0000-0000-000000000000"
    ),
    capabilities=("EEPROM", "BUSY_PROTOCOL", "EMERGENCY_PARSER", "PRUSA_MMU2"),
    heating_report="T:{hotend:.1f} E:0 W:?",
)
RRF_MARLIN = Dialect(
    name="rrf",
    firmware_line=(
        "FIRMWARE_NAME: RepRapFirmware for Duet 3 MB6HC FIRMWARE_VERSION: 3.5.1 ELECTRONICS: Duet 3 MB6HC "
        "FIRMWARE_DATE: 2024-04-19 14:40:46"
    ),
    capabilities=(),
    busy=None,
    paused=None,
    boot=(),
    reports_capabilities=False,
    checksum_error="Error: Bad command checksum, Last Line: {last}",
    line_number_error="Error: Bad line number, Last Line: {last}",
    no_checksum_error="Error: Missing checksum, Last Line: {last}",
)
SMOOTHIE = Dialect(
    name="smoothie",
    firmware_line=(
        "FIRMWARE_NAME:Smoothieware, FIRMWARE_URL:http%3A//smoothieware.org, X-SOURCE_CODE_URL:"
        "https://github.com/Smoothieware/Smoothieware, FIRMWARE_VERSION:edge-3332442, X-FIRMWARE_BUILD_DATE:"
        "Nov 10 2020 10:00:00, X-SYSTEM_CLOCK:100MHz, X-AXES:5, X-GRBL_MODE:0, X-ARCS:1"
    ),
    capabilities=(),
    resend="rs {line}",
    checksum_error="Error:checksum mismatch, Last Line: {last}",
    line_number_error="Error:Line Number is not Last Line Number+1, Last Line: {last}",
    busy=None,
    paused=None,
    boot=("Smoothie", "ok"),
    reports_capabilities=False,
)

DIALECTS = {d.name: d for d in (MARLIN_2, MARLIN_1, PRUSA_MK3, RRF_MARLIN, SMOOTHIE)}


def dialect(name: str) -> Dialect:
    """The dialect called ``name``; a ValueError lists the known ones."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown firmware dialect {name!r}: choose one of {', '.join(DIALECTS)}") from None
