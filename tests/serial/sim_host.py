"""A minimal ping-pong host for tests: one framed line at a time, wait for ``ok``, honour ``Resend:``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import select
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

import serial

from fleet.serial.lineproto import frame


class LineReader:
    """Reads whole reply lines from a pyserial port, with a deadline per call."""

    def __init__(self, port: serial.Serial) -> None:
        self.port = port
        self._buffer = bytearray()
        self.bytes_read = 0

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def read_line(self, timeout: float) -> Optional[str]:
        """The next line without its terminator, or None if none came within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                self.bytes_read += end + 1
                return line.decode("latin-1").rstrip("\r")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            # Waiting in select() rather than through the port's timeout: changing pyserial's timeout
            # reconfigures the terminal each time, which costs more than a short line takes.
            if select.select([self.port.fileno()], [], [], left)[0]:
                self._buffer += self.port.read(max(1, self.port.in_waiting))

    def read_until(self, done: str, timeout: float) -> list[str]:
        """Lines up to and including the first that starts with ``done``; raises on timeout."""
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(deadline - time.monotonic())
            if line is None:
                raise TimeoutError(f"no line starting with {done!r} within {timeout} s; got {lines}")
            lines.append(line)
            if line.startswith(done):
                return lines


@dataclass(frozen=True)
class HostRun:
    """What a ping-pong run cost: lines written (resends included), errors seen, time taken."""

    lines_written: int
    bytes_written: int
    errors: int
    resends: int
    seconds: float


class PingPongHost:
    """Sends numbered lines one at a time; on ``Resend: N`` it goes back to line N."""

    def __init__(self, reader: LineReader, timeout: float = 5.0) -> None:
        self.reader = reader
        self.timeout = timeout

    def run(self, commands: Iterable[str], first_line: int = 1) -> HostRun:
        """Send every command numbered from ``first_line`` (after an ``M110`` that sets the number)."""
        self.reader.write(f"M110 N{first_line - 1}\n".encode())
        self.reader.read_until("ok", self.timeout)
        sent: list[bytes] = [frame(first_line + index, command) for index, command in enumerate(commands)]
        started = time.monotonic()
        written = bytes_written = errors = resends = 0
        index = 0
        while index < len(sent):
            self.reader.write(sent[index])
            written += 1
            bytes_written += len(sent[index])
            resend_to: Optional[int] = None
            for line in self.reader.read_until("ok", self.timeout):
                if line.startswith("Error:"):
                    errors += 1
                elif line.startswith("Resend:"):
                    resends += 1
                    resend_to = int(line.split(":", 1)[1]) - first_line
            index = index + 1 if resend_to is None else resend_to
        return HostRun(written, bytes_written, errors, resends, time.monotonic() - started)


def main(argv: Optional[list[str]] = None) -> int:
    """Run the ping-pong host in its own process (so its timing does not share a GIL with the device)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port")
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--length", type=int, default=48, help="bytes per framed line, newline included")
    parser.add_argument("--first-line", type=int, default=1000)
    args = parser.parse_args(argv)
    command = padded_command(args.length, args.first_line)
    with serial.Serial(args.port, args.baud, timeout=1) as port:
        result = PingPongHost(LineReader(port)).run([command] * args.lines, first_line=args.first_line)
    print(json.dumps(dataclasses.asdict(result)))
    return 0


def padded_command(length: int, number: int) -> str:
    """A G1 whose framed line (``N<number> ...*cs\\n``) is ``length`` bytes long."""
    command = "G1 X1"
    while len(frame(number, command)) < length:
        command += "1"
    return command


if __name__ == "__main__":
    raise SystemExit(main())
