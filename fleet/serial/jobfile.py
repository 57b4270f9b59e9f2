"""A G-code file being streamed: checked before the first byte goes out, then read one line at a time.

A file the firmware could not take (a binary blob, a line longer than any firmware buffers) is refused
by :func:`check_file` with the line it fails on, before the printer sees anything.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Optional

from .lineproto import strip_comment
from .stream_types import JobResult

#: Longer than any firmware's command buffer (Marlin's MAX_CMD_SIZE is 96; RepRapFirmware's is 256).
MAX_COMMAND_BYTES = 256


class BadGcodeFile(ValueError):
    """The file is not plain G-code a printer can take; the message names the line."""


def check_file(path: Path) -> int:
    """Count the file's commands, refusing binary data and overlong commands (memory stays flat)."""
    count = 0
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            if b"\x00" in raw:
                raise BadGcodeFile(f"{path.name} line {number}: binary data (a NUL byte), not G-code")
            command = strip_comment(raw.decode("ascii", "replace"))
            if not command:
                continue
            if len(command) > MAX_COMMAND_BYTES:
                raise BadGcodeFile(
                    f"{path.name} line {number}: a command of {len(command)} bytes; no firmware takes more "
                    f"than {MAX_COMMAND_BYTES}"
                )
            if any(ord(c) < 0x20 and c != "\t" for c in command):
                raise BadGcodeFile(f"{path.name} line {number}: binary data in a command, not G-code")
            count += 1
    return count


@dataclass
class Job:
    """One file under way; the streamer's threads touch it under the streamer's lock."""

    path: Path
    stream: BinaryIO
    total_bytes: int
    total_lines: Optional[int]
    line_times: Optional[Sequence[float]]
    total_time: float
    started: float
    pending: Optional[str] = None  # the next command of the file, read but not yet sent
    pending_end: int = 0  # its byte offset in the file
    eof: bool = False
    sent_lines: int = 0
    bytes_done: int = 0
    time_done: float = 0.0
    resends_at_start: int = 0
    result: Optional[JobResult] = None
    finished: threading.Event = field(default_factory=threading.Event)


def peek_command(job: Job) -> Optional[str]:
    """The file's next command, read ahead one line at a time (memory stays flat)."""
    while job.pending is None and not job.eof:
        raw = job.stream.readline()
        if not raw:
            job.eof = True
            job.bytes_done = job.total_bytes
            break
        command = strip_comment(raw.decode("ascii", "replace"))
        if command:
            job.pending = command
            job.pending_end = job.stream.tell()
        else:
            job.bytes_done = job.stream.tell()
    return job.pending
