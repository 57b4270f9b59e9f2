"""Sliced 3MF archives (``.gcode.3mf``, from PrusaSlicer, BambuStudio and OrcaSlicer): pick a plate's G-code.

Such an archive is a ZIP holding ``Metadata/plate_<n>.gcode`` for each sliced plate, often with a
``.md5`` beside it. One plate is taken as it is; with several, ``plate`` names one, and without it
the refusal (:data:`SEVERAL_PLATES`) names the plates; each face that takes uploads (the API's form,
the command line, the dashboard) says how to choose there (:func:`choosing_plate`). The chosen
G-code is streamed out of the archive (never unpacked whole) and checked against the archive's CRC
and the slicer's MD5 as it is read. Pure code over seekable streams.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Sequence
from typing import IO, BinaryIO, Optional

from ..errors import FleetError, Invalid

_PLATE_RE = re.compile(r"Metadata/plate_(\d{1,4})\.gcode")
#: The key (and ``details["plates"]``) of the refusal of an archive with several plates and no choice.
SEVERAL_PLATES = "several_plates"
#: How to choose where the place of the upload is not known: name the plate, or export it alone.
_HOW = (
    "a job prints one plate, so name the plate to print, or export the plate you want on its own "
    "(OrcaSlicer and BambuStudio: File > Export > Export plate sliced file; PrusaSlicer: slice that "
    "plate and export its G-code)"
)


def several_plates(found: Sequence[int], how: str = _HOW) -> Invalid:
    """The refusal of an archive with several plates when none was chosen.

    ``how`` says how to choose where the file was sent; ``{plate}`` in it becomes the first plate's
    number, for an example.
    """
    listed = _and([str(n) for n in found])
    return Invalid(
        f"this 3MF file holds G-code for {len(found)} plates ({listed}): {how.format(plate=found[0])}",
        field="file",
        details={"plates": list(found)},
        key=SEVERAL_PLATES,
        params={"count": len(found), "plates": ", ".join(str(n) for n in found)},
    )


def choosing_plate(error: FleetError, how: str) -> FleetError:
    """``error`` as it is, unless it asks which plate to print: then the same refusal, saying ``how``."""
    found = error.details.get("plates") if isinstance(error.details, dict) else None
    if error.key != SEVERAL_PLATES or not isinstance(found, list) or not found:
        return error
    return several_plates(found, how)


def _damaged(detail: str) -> Invalid:
    return Invalid(f"this ZIP archive (a sliced 3MF?) is damaged or truncated: {detail}", field="file")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class PlateReader(io.RawIOBase):
    """Reads one plate's G-code out of the archive; a damaged entry raises :class:`Invalid`."""

    def __init__(self, archive: zipfile.ZipFile, name: str, md5: Optional[str]) -> None:
        super().__init__()
        self._archive = archive
        self._name = name
        self._entry: Optional[IO[bytes]] = None
        try:
            self._entry = archive.open(name)
        except Exception as exc:  # a damaged local header: as for the directory above
            raise _damaged(f"{name} cannot be opened ({exc})") from None
        self._md5 = md5
        self._hash = hashlib.md5(usedforsecurity=False)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._entry is None:
            raise ValueError("read from a closed plate")
        try:
            data = self._entry.read(len(buffer))
        except Exception as exc:  # zipfile fails in many ways on damaged input (bad CRC, method, sizes)
            raise _damaged(f"{self._name} cannot be read ({exc})") from None
        if not data:
            if self._md5 is not None and self._hash.hexdigest() != self._md5:
                raise _damaged(f"{self._name} does not match its MD5 checksum")
            return 0
        self._hash.update(data)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._entry is not None:
            self._entry.close()
            self._entry = None
        self._archive.close()
        super().close()


def plates(archive: zipfile.ZipFile) -> dict[int, str]:
    """The sliced plates in the archive: plate number → entry name."""
    found = {}
    for name in archive.namelist():
        match = _PLATE_RE.fullmatch(name)
        if match:
            found[int(match.group(1))] = name
    return dict(sorted(found.items()))


def open_plate(stream: BinaryIO, plate: Optional[int] = None) -> PlateReader:
    """The G-code of one plate of the 3MF archive in ``stream`` (seekable), as a binary reader."""
    try:
        archive = zipfile.ZipFile(stream)
    except Exception as exc:  # as above: a damaged directory fails in many ways
        raise _damaged(f"its table of contents cannot be read ({exc})") from None
    try:
        found = plates(archive)
        if not found:
            raise Invalid(
                "this 3MF file holds no sliced G-code (a project or a model, not a print): slice it, "
                "then export the G-code (.gcode, .bgcode or .gcode.3mf)",
                field="file",
            )
        listed = _and([str(n) for n in found])
        if plate is None:
            if len(found) > 1:
                raise several_plates(list(found))
            plate = next(iter(found))
        if plate not in found:
            raise Invalid(
                f"this 3MF file has no plate {plate}; it holds plate{'s' if len(found) > 1 else ''} {listed}",
                field="plate",
                details={"plates": list(found)},
            )
        name = found[plate]
        return PlateReader(archive, name, _md5_of(archive, name))
    except BaseException:
        archive.close()
        raise


def _md5_of(archive: zipfile.ZipFile, name: str) -> Optional[str]:
    try:
        info = archive.getinfo(name + ".md5")
    except KeyError:
        return None
    if info.file_size > 1024:
        raise _damaged(f"{name}.md5 is not an MD5 checksum")
    try:
        text = archive.read(info).decode("ascii", errors="replace").strip().lower()
    except Exception as exc:
        raise _damaged(f"{name}.md5 cannot be read ({exc})") from None
    digest = text.split()[0] if text else ""
    if not re.fullmatch(r"[0-9a-f]{32}", digest):
        raise _damaged(f"{name}.md5 is not an MD5 checksum")
    return digest
