"""The host side of the RepRap serial line protocol, as pure functions: framing lines and reading replies.

A host sends ``N<line> <command>*<checksum>``: the checksum is the XOR of every byte before ``*``.
Firmwares (Marlin, Prusa, RepRapFirmware, Klipper's pty) answer each line with ``ok`` and ask for a
line again with ``Resend: N`` (or ``rs N``).
"""

from __future__ import annotations


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
