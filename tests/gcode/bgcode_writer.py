"""A small binary G-code writer, for tests only: builds files the decoder must read back.

It follows the published layout (file header, blocks with parameters and CRC32), and packs with
its own heatshrink and MeatPack encoders, so round trips test the decoder against an independent
reading of the format rather than against itself.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from fleet.gcode.bgcode import BlockType, Compression, GcodeEncoding, ThumbnailFormat

# -- heatshrink ------------------------------------------------------------------------------------


class _Bits:
    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, width: int) -> None:
        self.acc = (self.acc << width) | value
        self.n += width
        while self.n >= 8:
            self.n -= 8
            self.out.append((self.acc >> self.n) & 0xFF)
        self.acc &= (1 << self.n) - 1

    def finish(self) -> bytes:
        if self.n:
            self.out.append((self.acc << (8 - self.n)) & 0xFF)
        return bytes(self.out)


def heatshrink_compress(data: bytes, window_bits: int, lookahead_bits: int) -> bytes:
    """Greedy LZSS in heatshrink's bit format (literals: 1 + 8 bits; back-references: 0 + W + L)."""
    bits = _Bits()
    window = 1 << window_bits
    longest = 1 << lookahead_bits
    seen: dict[bytes, list[int]] = {}
    i = 0
    while i < len(data):
        best_len, best_dist = 0, 0
        key = data[i : i + 2]
        if len(key) == 2:
            for start in reversed(seen.get(key, [])[-64:]):
                if i - start > window:
                    break
                length = 0
                while (
                    length < longest and i + length < len(data) and data[start + length] == data[i + length]
                ):
                    length += 1
                if length > best_len:
                    best_len, best_dist = length, i - start
        step = best_len if best_len >= 2 else 1
        if best_len >= 2:
            bits.put(0, 1)
            bits.put(best_dist - 1, window_bits)
            bits.put(best_len - 1, lookahead_bits)
        else:
            bits.put(1, 1)
            bits.put(data[i], 8)
        for j in range(i, i + step):
            seen.setdefault(data[j : j + 2], []).append(j)
        i += step
    return bits.finish()


# -- MeatPack --------------------------------------------------------------------------------------

_CODES = {ch: n for n, ch in enumerate(b"0123456789. \nGX")}


def meatpack_pack(text: bytes, *, comments: bool, no_spaces: bool = False) -> bytes:
    """Pack text G-code: G lines lose their spaces, inline comments go, comment lines travel
    unpacked (``comments``) or are dropped."""
    codes = dict(_CODES)
    if no_spaces:
        del codes[ord(" ")]
        codes[ord("E")] = 11
    out = bytearray(b"\xff\xff\xfb")
    if no_spaces:
        out += b"\xff\xff\xf7"
    packing = True
    for raw in text.split(b"\n"):
        if raw.startswith(b";"):
            if comments:
                if packing:
                    out += b"\xff\xff\xfa"
                    packing = False
                out += raw + b"\n"
            continue
        line = raw.split(b";", 1)[0].strip()
        if len(line) < 2:
            continue
        g = line.find(b"G")
        if g >= 0 and line[g + 1 : g + 2].isdigit():
            line = line.replace(b" ", b"")
        line += b"\n"
        if not packing:
            out += b"\xff\xff\xfb"
            packing = True
        for k in range(0, len(line), 2):
            a = line[k]
            b = line[k + 1] if k + 1 < len(line) else ord("\n")
            ca, cb = codes.get(a), codes.get(b)
            if ca is not None and cb is not None:
                out.append(ca | (cb << 4))
            elif ca is not None:
                out += bytes([ca | 0xF0, b])
            elif cb is not None:
                out += bytes([0x0F | (cb << 4), a])
            else:
                out += bytes([0xFF, a, b])
    return bytes(out)


# -- blocks and files ------------------------------------------------------------------------------


def compress(data: bytes, method: Compression) -> bytes:
    if method is Compression.NONE:
        return data
    if method is Compression.DEFLATE:
        return zlib.compress(data)
    bits = 11 if method is Compression.HEATSHRINK_11_4 else 12
    return heatshrink_compress(data, bits, 4)


def block(
    kind: BlockType,
    data: bytes,
    *,
    compression: Compression = Compression.NONE,
    params: bytes = b"\x00\x00",
    crc: bool = True,
    stored: bytes | None = None,
) -> bytes:
    """One block; ``stored`` overrides the compressed payload (to build damaged files)."""
    payload = compress(data, compression) if stored is None else stored
    header = struct.pack("<HHI", kind, compression, len(data))
    if compression is not Compression.NONE:
        header += struct.pack("<I", len(payload))
    body = header + params + payload
    return body + (struct.pack("<I", zlib.crc32(body)) if crc else b"")


def ini(pairs: dict[str, str]) -> bytes:
    return "".join(f"{k}={v}\n" for k, v in pairs.items()).encode()


@dataclass
class Thumb:
    fmt: ThumbnailFormat
    width: int
    height: int
    data: bytes


@dataclass
class Spec:
    gcode: bytes
    compression: Compression = Compression.NONE
    encoding: GcodeEncoding = GcodeEncoding.NONE
    crc: bool = True
    block_size: int = 65536
    thumbnails: list[Thumb] = field(default_factory=list)
    printer: dict[str, str] = field(default_factory=dict)
    print_meta: dict[str, str] = field(default_factory=dict)
    slicer: dict[str, str] = field(default_factory=dict)
    producer: str = "TestSlicer 1.0"
    no_spaces: bool = False


def write(spec: Spec) -> bytes:
    out = b"GCDE" + struct.pack("<IH", 1, 1 if spec.crc else 0)
    c, crc = spec.compression, spec.crc
    out += block(BlockType.FILE_METADATA, ini({"Producer": spec.producer}), compression=c, crc=crc)
    out += block(BlockType.PRINTER_METADATA, ini(spec.printer), compression=c, crc=crc)
    for t in spec.thumbnails:
        params = struct.pack("<HHH", t.fmt, t.width, t.height)
        out += block(BlockType.THUMBNAIL, t.data, compression=c, params=params, crc=crc)
    out += block(BlockType.PRINT_METADATA, ini(spec.print_meta), compression=c, crc=crc)
    out += block(BlockType.SLICER_METADATA, ini(spec.slicer), compression=c, crc=crc)
    # Whole lines per block, as the slicer cuts them.
    lines = spec.gcode.splitlines(keepends=True)
    chunk: list[bytes] = []
    size = 0
    chunks: list[bytes] = []
    for line in lines:
        if chunk and size + len(line) > spec.block_size:
            chunks.append(b"".join(chunk))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        chunks.append(b"".join(chunk))
    for text in chunks:
        if spec.encoding is GcodeEncoding.NONE:
            data = text
        else:
            data = meatpack_pack(
                text, comments=spec.encoding is GcodeEncoding.MEATPACK_COMMENTS, no_spaces=spec.no_spaces
            )
        params = struct.pack("<H", spec.encoding)
        out += block(BlockType.GCODE, data, compression=c, params=params, crc=crc)
    return out
