"""The simulated firmware's options and its M115 reply: plain values, checked on construction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from fleet.serial.dialects import Dialect, dialect

MACHINE_TYPE = "CrowdFab simulated printer"


@dataclass(frozen=True)
class SimulatorOptions:
    """How the simulated printer and its serial line behave; the defaults are a stock Marlin on USB."""

    buffer_size: int = 4
    rx_buffer_bytes: int = 128
    advanced_ok: bool = False
    speedup: float = 1.0
    baud: Optional[int] = None
    usb_latency_s: float = 0.0
    corrupt_rate: float = 0.0
    drop_ok_every: Optional[int] = None
    thermal_runaway_at_line: Optional[int] = None
    disconnect_at_line: Optional[int] = None
    busy_interval_s: float = 2.0
    #: A dialect that says ``wait`` when idle (Marlin 1.1) says it after this long with nothing received
    #: and nothing queued, and again each time as long (Marlin's NO_TIMEOUTS, wall-clock time).
    idle_wait_s: float = 1.0
    heat_rate_c_per_s: float = 2.0
    autoreport_temperature: bool = True
    firmware_name: str = "Marlin 2.1.2 (CrowdFab simulator)"
    #: A firmware family's reply forms (see fleet.serial.dialects); None: the simulator's own Marlin 2.
    dialect: Optional[str] = None
    seed: int = 0
    log_path: Optional[Path] = None

    def __post_init__(self) -> None:
        if self.buffer_size < 1:
            raise ValueError(f"buffer_size must be at least 1, got {self.buffer_size}")
        if self.rx_buffer_bytes < 1:
            raise ValueError(f"rx_buffer_bytes must be at least 1, got {self.rx_buffer_bytes}")
        if not self.speedup > 0:
            raise ValueError(f"speedup must be > 0 (math.inf: moves take no time), got {self.speedup}")
        if self.baud is not None and self.baud <= 0:
            raise ValueError(f"baud must be positive or None, got {self.baud}")
        if not self.idle_wait_s > 0:
            raise ValueError(f"idle_wait_s must be > 0, got {self.idle_wait_s}")
        if self.dialect is not None:
            dialect(self.dialect)  # a ValueError naming the known ones
        if self.drop_ok_every is not None and self.drop_ok_every < 1:
            raise ValueError(f"drop_ok_every must be at least 1 or None, got {self.drop_ok_every}")


def capability_lines(options: SimulatorOptions, family: Optional[Dialect]) -> list[str]:
    """M115's reply: the firmware line, then its Cap: lines."""
    caps = {
        "AUTOREPORT_TEMP": int(options.autoreport_temperature),
        "ADVANCED_OK": int(options.advanced_ok),
        "EEPROM": 0,
        "BUSY_PROTOCOL": 1,
        "EMERGENCY_PARSER": 1,
        "AUTOREPORT_POS": 0,
    }
    if family is not None:
        own = {"AUTOREPORT_TEMP": caps["AUTOREPORT_TEMP"], "ADVANCED_OK": caps["ADVANCED_OK"]}
        own.update(dict.fromkeys(family.capabilities, 1))
        listed = [f"Cap:{name}:{value}" for name, value in own.items()]
        return [family.firmware_line, *(listed if family.reports_capabilities else [])]
    first = (
        f"FIRMWARE_NAME:{options.firmware_name} PROTOCOL_VERSION:1.0"
        f" MACHINE_TYPE:{MACHINE_TYPE} EXTRUDER_COUNT:1"
    )
    return [first, *(f"Cap:{name}:{value}" for name, value in caps.items())]
