"""What is refused at the door: files that are not G-code, empty, too large, or with absurd lines."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from fleet.errors import Invalid, TooLarge
from fleet.gcode import Analysis, analyze_path, analyze_stream
from fleet.gcode.generate import generate_box, write_box

Analyze = Callable[..., Analysis]

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(40)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(40)
ASCII_STL = b"solid cube\n  facet normal 0 0 1\n    outer loop\n      vertex 0 0 0\n"
BGCODE = b"GCDE\x01\x00\x00\x00\x01\x00" + bytes(40)
ZIP_3MF = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(40)


def binary_stl(triangles: int = 2) -> bytes:
    header = b"exported by a CAD tool".ljust(80, b" ")
    return header + struct.pack("<I", triangles) + b"\x01" * 50 * triangles


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (PNG, ["PNG image", "plain-text G-code"]),
        (JPEG, ["JPEG image", "plain-text G-code"]),
        (ASCII_STL, ["STL model", "slice it"]),
        (binary_stl(), ["STL model", "slice it"]),
        (BGCODE, ["binary G-code", "damaged", "CRC32"]),
        (ZIP_3MF, ["ZIP archive", "3MF"]),
        (b"", ["no G-code commands"]),
        (b"\n\n   \r\n", ["no G-code commands"]),
        (b"; just a comment\n;another\n", ["no G-code commands"]),
        (b"hello, this is a letter\nnot a print\n", ["no G-code commands"]),
        (b"G28\nG1 X1\x00\x00\x01\nG1 X2\n", ["line 2", "binary data"]),
    ],
    ids=[
        "png",
        "jpeg",
        "ascii-stl",
        "binary-stl",
        "bgcode",
        "3mf",
        "empty",
        "blank",
        "comments",
        "text",
        "nul",
    ],
)
def test_not_gcode(tmp_path: Path, data: bytes, words: list[str]) -> None:
    path = tmp_path / "upload.gcode"  # the name says G-code; the content decides
    path.write_bytes(data)
    with pytest.raises(Invalid) as info:
        analyze_path(path)
    for word in words:
        assert word in info.value.message
    assert info.value.status == 422


def test_too_large_names_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.gcode"
    write_box(path, width=60, depth=60, height=3, infill=True)
    with pytest.raises(TooLarge) as info:
        analyze_path(path, max_bytes=10_000)
    assert "9.76562 KiB" in info.value.message or "10000" in info.value.message
    assert info.value.status == 413
    # A stream of unknown size is stopped once it passes the limit.
    with pytest.raises(TooLarge, match="limit of 1 MiB"), path.open("rb") as stream:
        analyze_stream(_Unsized(stream.read() * 20), max_bytes=1 << 20)
    assert analyze_path(path, max_bytes=path.stat().st_size).size_bytes == path.stat().st_size


class _Unsized(io.RawIOBase):
    """A stream that does not know its size, like an upload."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


def test_absurd_line_is_refused(analyze_text: Analyze) -> None:
    with pytest.raises(Invalid, match="line 2 is longer than 64 KiB"):
        analyze_text("G28\n; " + "x" * 70_000 + "\nG1 X1\n")
    with pytest.raises(Invalid, match="line 3 is longer"):
        analyze_text("G28\nG1 X1\n" + "G1 X1 " * 20_000)  # no newline at all at the end


def test_byte_order_mark_and_crlf_are_fine(analyze_text: Analyze) -> None:
    a = analyze_stream(io.BytesIO(b"\xef\xbb\xbfG90\r\nM83\r\nG1 X1 Y1\r\nG1 X2 Y1 E1\r\n"))
    assert a.bounds is not None and (a.bounds.min_x, a.bounds.max_x) == (1.0, 2.0)
    assert a.line_count == 4


def test_memory_stays_flat_in_the_file_size(tmp_path: Path) -> None:
    """A file 32 times larger needs no more memory: peak RSS of a fresh interpreter for each."""
    text = generate_box(80, 80, 5, infill=True).encode()
    small, large = tmp_path / "small.gcode", tmp_path / "large.gcode"
    small.write_bytes(text)
    large.write_bytes(text * 32)
    probe = (
        "import resource, sys\n"
        "from fleet.gcode import analyze_path\n"
        "analyze_path(sys.argv[1])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )

    def peak_kib(path: Path) -> int:
        out = subprocess.run(
            [sys.executable, "-c", probe, str(path)], check=True, capture_output=True, text=True
        )
        return int(out.stdout)

    grown_kib = peak_kib(large) - peak_kib(small)
    file_grown_kib = (large.stat().st_size - small.stat().st_size) // 1024
    assert file_grown_kib > 9_000
    assert grown_kib < 3 * 1024, f"peak memory grew by {grown_kib} KiB for {file_grown_kib} KiB more file"
