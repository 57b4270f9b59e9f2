"""Binary G-code: the real PrusaSlicer file decodes to its text twin, our own files round-trip through
every compression and encoding, and damaged files are refused with an error that names the damage."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.errors import Invalid
from fleet.gcode import analyze_path, analyze_stream, bgcode, heatshrink, meatpack
from fleet.gcode.bgcode import BlockType, Compression, GcodeEncoding, ThumbnailFormat

from .bgcode_writer import Spec, Thumb, block, heatshrink_compress, meatpack_pack, write

TWIN = "mini_cube_prusaslicer26"
SAMPLE = b"""; a comment line
G28 ; home
M104 S215
G1 X10.5 Y20 Z.2 F3000
G1 X12 Y20.25 E.4321
; another comment
M117 Printing layer 1
G1 X0 Y0
M84
"""


def decode(data: bytes) -> bytes:
    return b"".join(bgcode.to_text(io.BytesIO(data)))


def commands(text: bytes) -> list[bytes]:
    """The commands of a G-code text, without comments, blank lines or trailing spaces."""
    found = []
    for line in text.split(b"\n"):
        command = line.split(b";", 1)[0].strip()
        if command:
            found.append(command)
    return found


# -- the real file ---------------------------------------------------------------------------------


def test_prusaslicer_file_decodes_to_its_text_twin(sample_gcode: Path) -> None:
    binary = (sample_gcode / f"{TWIN}.bgcode").read_bytes()
    twin = (sample_gcode / f"{TWIN}.gcode").read_bytes()
    text = decode(binary)
    assert commands(text) == commands(twin)
    assert text == twin  # header, thumbnails and footer as PrusaSlicer writes them, too
    kinds = [(b.type, b.compression) for b in bgcode.read_blocks(io.BytesIO(binary))]
    assert (BlockType.GCODE, Compression.HEATSHRINK_12_4) in kinds
    assert (BlockType.SLICER_METADATA, Compression.DEFLATE) in kinds


def test_prusaslicer_file_analyses_like_its_twin(sample_gcode: Path) -> None:
    binary = analyze_path(sample_gcode / f"{TWIN}.bgcode")
    text = analyze_path(sample_gcode / f"{TWIN}.gcode")
    assert binary == text
    assert binary.estimated_time_s == 32 * 60 + 6
    assert binary.filament_length_mm == 986.61 and binary.filament_weight_g == 3.01
    assert binary.material == "PETG"
    assert [(t.width, t.height, t.format) for t in binary.thumbnails] == [(16, 16, "PNG"), (220, 124, "PNG")]
    assert binary.thumbnails[0].data.startswith(b"\x89PNG")


# -- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", list(Compression), ids=lambda c: c.name.lower())
@pytest.mark.parametrize("encoding", list(GcodeEncoding), ids=lambda e: e.name.lower())
@pytest.mark.parametrize("crc", [True, False], ids=["crc32", "no-crc"])
def test_every_compression_and_encoding_round_trips(
    compression: Compression, encoding: GcodeEncoding, crc: bool
) -> None:
    gcode = SAMPLE * 40
    data = write(Spec(gcode, compression=compression, encoding=encoding, crc=crc, block_size=500))
    text = decode(data)
    assert commands(text) == commands(gcode)
    if encoding is not GcodeEncoding.MEATPACK:  # plain MeatPack drops comment lines
        assert b"; another comment" in text
    if encoding is GcodeEncoding.NONE:
        assert gcode in text


def test_meatpack_without_spaces_round_trips() -> None:
    gcode = b"M104 S215\nG1 X1 Y2 E.5\nM117 Hello there\n"
    packed = meatpack_pack(gcode, comments=False, no_spaces=True)
    assert meatpack.unpack(packed) == gcode


def test_meatpack_puts_spaces_back_in_g_lines_only() -> None:
    assert meatpack.unpack(meatpack_pack(b"G1 X1 Y2 Z3 E4 F5\n", comments=False)) == b"G1 X1 Y2 Z3 E4 F5\n"
    assert meatpack.unpack(meatpack_pack(b"M104 S200\n", comments=False)) == b"M104 S200\n"


@pytest.mark.parametrize(
    ("fmt", "tag"),
    [
        (ThumbnailFormat.PNG, "thumbnail"),
        (ThumbnailFormat.JPG, "thumbnail_JPG"),
        (ThumbnailFormat.QOI, "thumbnail_QOI"),
    ],
)
def test_thumbnails_of_each_format_reach_the_analysis(fmt: ThumbnailFormat, tag: str) -> None:
    image = bytes(range(256)) * 3
    data = write(Spec(SAMPLE, compression=Compression.DEFLATE, thumbnails=[Thumb(fmt, 32, 24, image)]))
    text = decode(data)
    assert f"; {tag} begin 32x24 ".encode() in text
    analysis = analyze_stream(io.BytesIO(data))
    [thumb] = analysis.thumbnails
    assert (thumb.width, thumb.height, thumb.format, thumb.data) == (32, 24, fmt.name, image)


def test_metadata_becomes_the_comments_the_header_parser_reads() -> None:
    spec = Spec(
        SAMPLE,
        compression=Compression.HEATSHRINK_11_4,
        producer="PrusaSlicer 2.7.4",
        printer={"printer_model": "MK4", "filament_type": "ASA", "nozzle_diameter": "0.6"},
        print_meta={
            "filament used [mm]": "123.45",
            "filament used [g]": "0.37",
            "estimated printing time (normal mode)": "1h 2m 3s",
        },
        slicer={"layer_height": "0.25", "filament_diameter": "1.75"},
    )
    analysis = analyze_stream(io.BytesIO(write(spec)))
    assert analysis.slicer.name == "PrusaSlicer" and analysis.slicer.version == "2.7.4"
    assert analysis.material == "ASA" and analysis.nozzle_diameter == 0.6
    assert analysis.estimated_time_s == 3723 and analysis.filament_length_mm == 123.45
    assert analysis.filament_weight_g == 0.37 and analysis.layer_height == 0.25


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=3000) | st.text("GX0123456789. \n;MEF", max_size=3000).map(str.encode),
    window=st.sampled_from([11, 12]),
)
def test_heatshrink_round_trips_any_bytes(data: bytes, window: int) -> None:
    packed = heatshrink_compress(data, window, 4)
    assert heatshrink.decompress(packed, window_bits=window, lookahead_bits=4, size=len(data)) == data


_WORD = st.tuples(
    st.sampled_from("XYZEF"), st.decimals(-999, 999, places=3).map(lambda d: f"{d.normalize():f}")
)
_G_LINE = st.builds(
    lambda n, words: " ".join([f"G{n}"] + [f"{k}{v}" for k, v in words]),
    st.sampled_from([0, 1, 2, 3, 28, 92]),
    st.lists(_WORD, max_size=5),
)
_OTHER = st.sampled_from(["M104 S215", "M140 S60", "M107", "M106 S255", "T0", "M117 Printing 3.5%"])
_COMMENT = st.text("abc xyz:=0123456789", max_size=30).map(lambda t: "; " + t)


@settings(max_examples=80, deadline=None)
@given(
    lines=st.lists(_G_LINE | _OTHER | _COMMENT, min_size=1, max_size=60),
    encoding=st.sampled_from([GcodeEncoding.MEATPACK, GcodeEncoding.MEATPACK_COMMENTS]),
    compression=st.sampled_from(list(Compression)),
)
def test_meatpack_files_round_trip_to_the_same_commands(
    lines: list[str], encoding: GcodeEncoding, compression: Compression
) -> None:
    gcode = ("\n".join(lines) + "\n").encode()
    text = decode(write(Spec(gcode, encoding=encoding, compression=compression, block_size=300)))
    assert commands(text) == commands(gcode)
    if encoding is GcodeEncoding.MEATPACK_COMMENTS:
        kept = [ln for ln in gcode.split(b"\n") if ln.startswith(b";")]
        got = [ln for ln in text.split(b"\n") if ln.startswith(b";")]
        assert all(c in got for c in kept)


# -- damaged files ---------------------------------------------------------------------------------

GOOD = write(Spec(SAMPLE, compression=Compression.DEFLATE))
HEADER = b"GCDE" + struct.pack("<IH", 1, 1)
GCODE_PARAMS = struct.pack("<H", 0)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]


DAMAGED = [
    ("bad-magic", b"GCDF" + GOOD[4:], "not a binary G-code file"),
    ("bad-version", b"GCDE" + struct.pack("<IH", 2, 1) + GOOD[10:], "format version 2"),
    ("bad-checksum-type", b"GCDE" + struct.pack("<IH", 1, 7) + GOOD[10:], "unknown checksum type 7"),
    ("short-header", b"GCDE\x01\x00", "file header"),
    ("bad-crc", _flip(GOOD, len(GOOD) - 10), "fails its CRC32 check"),
    ("truncated-block", GOOD[: len(GOOD) - 7], "truncated"),
    ("truncated-block-header", GOOD[:14], "truncated"),
    ("no-gcode", HEADER + block(BlockType.FILE_METADATA, b"Producer=x\n"), "no G-code blocks"),
    ("unknown-compression", HEADER + struct.pack("<HHII", 1, 9, 10, 10), "unknown compression 9"),
    ("unknown-type", HEADER + struct.pack("<HHI", 42, 0, 0), "unknown type 42"),
    ("oversized", HEADER + struct.pack("<HHII", 1, 1, 0x7FFFFFFF, 100), "more than the"),
    ("oversized-stored", HEADER + struct.pack("<HHI", 1, 0, 0xFFFFFFFF), "more than the"),
    (
        "bomb",
        HEADER
        + block(
            BlockType.GCODE,
            b"",
            compression=Compression.DEFLATE,
            params=GCODE_PARAMS,
            stored=zlib.compress(b"G1 X1\n" * 1000),
        ),
        "does not expand to its declared 0 bytes",
    ),
    (
        "bad-deflate",
        HEADER
        + block(
            BlockType.GCODE,
            b"G28\n",
            compression=Compression.DEFLATE,
            params=GCODE_PARAMS,
            stored=b"not deflate",
        ),
        "deflate data of block 1 is corrupt",
    ),
    (
        "bad-heatshrink",
        HEADER
        + block(
            BlockType.GCODE,
            b"G28\n" * 10,
            compression=Compression.HEATSHRINK_12_4,
            params=GCODE_PARAMS,
            stored=b"\x00\x00\x00",
        ),
        "heatshrink data of block 1",
    ),
    (
        "unknown-encoding",
        HEADER + block(BlockType.GCODE, b"G28\n", params=struct.pack("<H", 5)),
        "unknown encoding 5",
    ),
    (
        "unknown-image",
        HEADER + block(BlockType.THUMBNAIL, b"x", params=struct.pack("<HHH", 9, 1, 1)),
        "image format 9",
    ),
    (
        "repeated-metadata",
        HEADER + block(BlockType.PRINT_METADATA, b"a=b\n") + block(BlockType.PRINT_METADATA, b"a=b\n"),
        "a second print metadata block",
    ),
    (
        "metadata-after-gcode",
        HEADER
        + block(BlockType.GCODE, b"G28\n", params=GCODE_PARAMS)
        + block(BlockType.PRINTER_METADATA, b"a=b\n"),
        "after the G-code",
    ),
]


@pytest.mark.parametrize(("data", "says"), [(d, s) for _, d, s in DAMAGED], ids=[n for n, _, _ in DAMAGED])
def test_damaged_files_are_refused_naming_the_damage(data: bytes, says: str) -> None:
    with pytest.raises(Invalid) as info:
        decode(data)
    assert says in info.value.message and info.value.field == "file"
    if data[:4] == b"GCDE":  # the analysis refuses it the same way
        with pytest.raises(Invalid, match="binary G-code"):
            analyze_stream(io.BytesIO(data))


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(0, len(GOOD) - 1))
def test_every_truncation_is_refused(cut: int) -> None:
    with pytest.raises(Invalid):
        decode(GOOD[:cut])


@settings(max_examples=150, deadline=None)
@given(at=st.integers(10, len(GOOD) - 1), bit=st.integers(0, 7))
def test_every_flipped_bit_is_caught_by_the_crc(at: int, bit: int) -> None:
    damaged = GOOD[:at] + bytes([GOOD[at] ^ (1 << bit)]) + GOOD[at + 1 :]
    with pytest.raises(Invalid):
        decode(damaged)


def test_block_size_limit_is_a_parameter() -> None:
    data = write(Spec(SAMPLE * 100, block_size=10_000))
    with pytest.raises(Invalid, match="more than the 1000 bytes"):
        b"".join(bgcode.to_text(io.BytesIO(data), max_block=1000))


UNCHECKED = [
    write(
        Spec(SAMPLE * 5, compression=c, encoding=GcodeEncoding.MEATPACK_COMMENTS, crc=False, block_size=200)
    )
    for c in Compression
]


@settings(max_examples=300, deadline=None)
@given(
    which=st.integers(0, len(UNCHECKED) - 1),
    changes=st.lists(st.tuples(st.integers(10, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.none() | st.integers(10, 10_000),
)
def test_damage_without_a_crc_is_refused_or_decoded_never_a_crash(
    which: int, changes: list[tuple[int, int]], cut: int | None
) -> None:
    """With no CRC to catch it, damage reaches the decompressors and MeatPack: they refuse it with
    :class:`Invalid` or decode something bounded, and never fail in another way."""
    data = bytearray(UNCHECKED[which])
    for at, value in changes:
        data[at % len(data)] = value
    damaged = bytes(data[:cut])
    try:
        text = decode(damaged)
    except Invalid as exc:
        assert "binary G-code" in exc.message
        return
    assert len(text) < 20 * len(damaged) + 4096


def test_json_metadata_is_read_and_unknown_metadata_encodings_are_named() -> None:
    gcode_block = block(BlockType.GCODE, b"G28\n", params=GCODE_PARAMS)
    as_json = block(BlockType.PRINTER_METADATA, b'{"filament_type": "PETG"}', params=struct.pack("<H", 1))
    assert b"; filament_type = PETG\n" in decode(HEADER + as_json + gcode_block)
    for params, payload, says in (
        (struct.pack("<H", 1), b"[1, 2]", "does not hold an object"),
        (struct.pack("<H", 1), b"{not json", "does not hold an object"),
        (struct.pack("<H", 3), b"a=b\n", "unknown encoding 3"),
    ):
        bad = block(BlockType.PRINTER_METADATA, payload, params=params)
        with pytest.raises(Invalid, match=says):
            decode(HEADER + bad + gcode_block)
