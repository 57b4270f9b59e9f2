"""MeatPack, the G-code packing binary G-code blocks may use: two common characters in one byte.

Each byte holds two 4-bit codes, low nibble first, for ``0-9 . space \\n G X`` (``E`` instead of the
space once "no spaces" is on); the code ``1111`` means the character follows as a whole byte. Two
``0xFF`` bytes and a command byte switch packing on and off (comments travel unpacked). A ``\\n``
in the low nibble ends a line and its high nibble is padding.

Packed G lines lose the spaces between their words (``G1X10Y5E.2``); as Prusa's own reader does,
the spaces are put back before each parameter letter, so the text reads like the slicer's, and
consecutive line ends collapse into one. Pure code: bytes in, bytes out, one block at a time.
"""

from __future__ import annotations

SIGNAL = 0xFF
ENABLE_PACKING = 251
DISABLE_PACKING = 250
RESET_ALL = 249
QUERY_CONFIG = 248
ENABLE_NO_SPACES = 247
DISABLE_NO_SPACES = 246

#: The characters of the 4-bit codes 0 to 14 (code 11 is ``E`` in "no spaces" mode).
TABLE = b"0123456789. \nGX"
FULL = 0b1111

#: Words of G commands that get their space back (G0/G1, arcs, G29's parameters).
_G_PARAMETERS = frozenset(b"XYZEFIJRGPWHCA")
_NL = 0x0A
_SPACE = 0x20
_G = ord("G")


def unpack(data: bytes) -> bytes:
    """The text of one MeatPack-encoded block."""
    out = bytearray()
    packing = False
    no_spaces = False
    signals = 0  # 0xFF bytes seen in a row (two make a command)
    command = False
    pending_full = 0  # whole bytes still to come for codes that were 1111
    held = -1  # a packed character that must wait for the whole byte before it
    in_g_line = False
    table = bytearray(TABLE)

    def emit(ch: int) -> None:
        nonlocal in_g_line
        last = out[-1] if out else _NL
        if ch == _G and last == _NL:
            in_g_line = True
            out.append(ch)
            return
        if ch == _NL:
            in_g_line = False
            if last == _NL and out:
                return
        elif in_g_line and last != _SPACE and ch in _G_PARAMETERS:
            out.append(_SPACE)
        out.append(ch)

    def receive(byte: int) -> None:
        nonlocal pending_full, held
        if not packing:
            emit(byte)
            return
        if pending_full:
            emit(byte)
            if held >= 0:
                emit(held)
                held = -1
            pending_full -= 1
            return
        low, high = byte & 0x0F, byte >> 4
        if low == FULL:
            pending_full += 1
            if high == FULL:
                pending_full += 1
            else:
                held = table[high]
            return
        first = table[low]
        emit(first)
        if first == _NL:
            return
        if high == FULL:
            pending_full += 1
        else:
            emit(table[high])

    for byte in data:
        if byte == SIGNAL:
            if signals:
                command = True
                signals = 0
            else:
                signals = 1
            continue
        if command:
            command = False
            if byte == ENABLE_PACKING:
                packing = True
            elif byte in (DISABLE_PACKING, RESET_ALL):
                packing = False
            elif byte == ENABLE_NO_SPACES:
                no_spaces = True
            elif byte == DISABLE_NO_SPACES:
                no_spaces = False
            table[11] = ord("E") if no_spaces else _SPACE
            continue
        if signals:
            signals = 0
            receive(SIGNAL)
        receive(byte)
    return bytes(out)
