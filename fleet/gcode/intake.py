"""The edge where bytes come in: unpack what slicers package, refuse what is not G-code, stream lines.

Binary G-code (``.bgcode``) and sliced 3MF archives (``.gcode.3mf``) are turned into plain text here
(:func:`open_plain`), so what is stored, analysed and sent to printers is always text G-code.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import KW_ONLY, dataclass, field
from typing import BinaryIO, Optional, cast

from ..errors import Invalid, TooLarge
from . import bgcode, threemf

CHUNK_SIZE = 128 * 1024
_EXPORT = "export the model from your slicer as plain-text G-code (.gcode)"

#: Leading bytes of files people upload by mistake, and what they are.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (a UFP package?)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"%PDF", "a PDF document"),
)


def size_text(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


class _ChunkReader(io.RawIOBase):
    """A binary reader over an iterator of byte strings (the decoded text of a container)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._rest:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._rest = chunk
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


class Prefixed(io.RawIOBase):
    """``head`` followed by the rest of ``stream``: a peek at a stream that cannot seek back."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        super().__init__()
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class Decoded(io.BufferedReader):
    """The plain text decoded from a container (:func:`open_plain`), read as it is decoded."""


def seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def is_container(head: bytes) -> bool:
    """True when the first bytes are a binary G-code file or a ZIP (a sliced 3MF) to unpack."""
    return head.startswith(bgcode.MAGIC) or head.startswith(b"PK\x03\x04")


def open_plain(
    stream: BinaryIO, *, plate: Optional[int] = None, max_block: int = bgcode.MAX_BLOCK
) -> BinaryIO:
    """A reader of the plain-text G-code in ``stream``: the stream itself when it is text already,
    else the decoded ``.bgcode`` or the chosen plate of a ``.gcode.3mf`` (which needs a seekable
    stream; a ``plate`` for any other file is :class:`Invalid`). Decoding happens as the reader is
    read, so callers bound the output as they read.
    """
    can_seek = seekable(stream)
    if can_seek:
        start = stream.tell()
        head = stream.read(4)
        stream.seek(start)
    else:
        head = stream.read(4)
        # Unbuffered, so a plain upload is never read further than its reader asks.
        stream = cast(BinaryIO, Prefixed(head, stream))
    if plate is not None and not head.startswith(b"PK\x03\x04"):
        raise Invalid(
            f"plate {plate} was asked for, but this file is not a sliced 3MF archive (.gcode.3mf), so it "
            "has no plates to choose from: send it without a plate number",
            field="plate",
        )
    if head.startswith(bgcode.MAGIC):
        blocks = bgcode.to_text(io.BufferedReader(cast(io.RawIOBase, stream)), max_block=max_block)
        return Decoded(_ChunkReader(blocks), 256 * 1024)
    if head.startswith(b"PK\x03\x04"):
        if not can_seek:
            raise ValueError("a 3MF archive can only be read from a seekable stream")
        inner = Decoded(threemf.open_plate(stream, plate), 256 * 1024)
        if inner.peek(4)[:4].startswith(bgcode.MAGIC):  # a plate sliced as binary G-code
            return Decoded(_ChunkReader(bgcode.to_text(inner, max_block=max_block)), 256 * 1024)
        return inner
    return stream


def sniff(head: bytes, total_size: Optional[int] = None) -> None:
    """Raise :class:`Invalid` when the first bytes show the file is not plain-text G-code."""
    if head.startswith(b"GCDE"):
        raise Invalid("this binary G-code file must be decoded first (open_plain)", field="file")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise Invalid(f"this file is {what}, not G-code: {_EXPORT}", field="file")
    if head.lstrip()[:6].lower() == b"solid " or _is_binary_stl(head, total_size):
        raise Invalid(
            f"this file is an STL model, not G-code: slice it first, then {_EXPORT}",
            field="file",
        )


def _is_binary_stl(head: bytes, total_size: Optional[int]) -> bool:
    # An 80-byte header, a triangle count, then 50 bytes per triangle: the size gives it away.
    if total_size is None or len(head) < 84:
        return False
    (count,) = struct.unpack_from("<I", head, 80)
    return bool(total_size == 84 + 50 * count)


@dataclass(eq=False)
class LineReader:
    """Iterates over a binary stream in chunks, yielding each chunk's complete lines (without ``\\n``).

    Memory is bounded by the chunk size and ``max_line``. Raises :class:`TooLarge` past ``max_bytes``
    and :class:`Invalid` on binary content or an absurdly long line. ``size`` and ``lines`` count
    what has been read so far.
    """

    stream: BinaryIO
    _: KW_ONLY
    max_bytes: Optional[int] = None
    max_line: int = 64 * 1024
    total_size: Optional[int] = None
    chunk_size: int = CHUNK_SIZE
    size: int = field(default=0, init=False)
    lines: int = field(default=0, init=False)

    def __iter__(self) -> Iterator[list[bytes]]:
        rest = b""
        first = True
        while True:
            chunk = self.stream.read(self.chunk_size)
            if not chunk:
                break
            if first:
                sniff(chunk, self.total_size)
                if chunk.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark from a Windows editor
                    chunk = chunk[3:]
                first = False
            self.size += len(chunk)
            if self.max_bytes is not None and self.size > self.max_bytes:
                raise TooLarge(
                    f"the file is larger than this lab's limit of {size_text(self.max_bytes)}",
                    field="file",
                )
            nul = chunk.find(b"\0")
            if nul >= 0:
                line = self.lines + (rest + chunk[:nul]).count(b"\n") + 1
                raise Invalid(
                    f"line {line} holds binary data (a NUL byte), so this is not a text file: {_EXPORT}",
                    field="file",
                )
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            self._check_lengths(lines, rest)
            self.lines += len(lines)
            yield lines
        if rest:
            self.lines += 1
            yield [rest]

    def _check_lengths(self, lines: list[bytes], rest: bytes) -> None:
        longest = max(map(len, lines), default=0)
        if longest <= self.max_line and len(rest) <= self.max_line:
            return
        index = next((n for n, line in enumerate(lines) if len(line) > self.max_line), len(lines))
        raise Invalid(
            f"line {self.lines + index + 1} is longer than {size_text(self.max_line)}, "
            f"which no G-code line needs: {_EXPORT}",
            field="file",
        )
