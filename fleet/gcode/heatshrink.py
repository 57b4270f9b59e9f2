"""Heatshrink (LZSS) decompression, as binary G-code uses it with window/lookahead bits 11/4 and 12/4.

The stream is read most significant bit first. A 1 bit is followed by one literal byte; a 0 bit by
a back-reference: ``window_bits`` of distance minus one, then ``lookahead_bits`` of length minus
one, copied from what was already written. Trailing bits that do not make a whole token are padding.
Pure code: bytes in, bytes out, with the output bounded by the size the block declares.
"""

from __future__ import annotations


class HeatshrinkError(ValueError):
    """The data is not a valid heatshrink stream for the size it should decompress to."""


def decompress(data: bytes, *, window_bits: int, lookahead_bits: int, size: int) -> bytes:
    """Decompress ``data``, which must expand to exactly ``size`` bytes (no more is ever produced)."""
    if not 4 <= window_bits <= 15 or not 3 <= lookahead_bits < window_bits:
        raise HeatshrinkError(f"unsupported heatshrink parameters {window_bits}/{lookahead_bits}")
    out = bytearray()
    acc = 0  # bits not yet consumed, right-aligned
    nbits = 0
    pos = 0
    end = len(data)
    backref_bits = window_bits + lookahead_bits
    count_mask = (1 << lookahead_bits) - 1
    while len(out) < size:
        # Enough bits for the longest token (tag + back-reference), or whatever remains.
        while nbits <= backref_bits and pos < end:
            acc = (acc << 8) | data[pos]
            pos += 1
            nbits += 8
        if nbits < 9:
            break  # padding (or the stream ended early: reported below)
        if (acc >> (nbits - 1)) & 1:
            nbits -= 9
            out.append((acc >> nbits) & 0xFF)
        else:
            if nbits < 1 + backref_bits:
                break
            nbits -= 1 + backref_bits
            token = acc >> nbits
            distance = ((token >> lookahead_bits) & ((1 << window_bits) - 1)) + 1
            count = (token & count_mask) + 1
            if distance > len(out):
                raise HeatshrinkError(f"a back-reference reaches {distance} bytes back, before the start")
            if len(out) + count > size:
                raise HeatshrinkError(f"the data expands past its declared size of {size} bytes")
            start = len(out) - distance
            if count <= distance:
                out += out[start : start + count]
            else:  # an overlapping copy repeats the last ``distance`` bytes
                for i in range(count):
                    out.append(out[start + i])
        acc &= (1 << nbits) - 1
    if len(out) != size:
        raise HeatshrinkError(f"the data expands to {len(out)} bytes, not the declared {size}")
    # What is left over must be the padding of the last byte.
    if nbits + 8 * (end - pos) >= 8:
        raise HeatshrinkError(f"the data holds more than its declared {size} bytes")
    return bytes(out)
