"""Preview images embedded in G-code comments (``; thumbnail begin 220x124 15684`` … ``; thumbnail end``)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Optional

from .results import Thumbnail

# "thumbnail begin", "thumbnail_JPG begin", "thumbnail_QOI begin" followed by WxH and the base64 length.
# Sizes beyond any real preview (more digits than these) do not open a block: its lines stay comments.
_BEGIN_RE = re.compile(
    rb"^thumbnail(?:_([A-Za-z0-9]+))?\s+begin\s+(\d{1,9})\s*x\s*(\d{1,9})(?:\s+(\d{1,12}))?(?![0-9x])"
)


class ThumbnailCollector:
    """Keeps at most ``max_count`` thumbnails of at most ``max_base64`` characters each.

    Larger or surplus images are skipped line by line, so memory stays bounded whatever the file holds.
    """

    def __init__(self, max_count: int = 4, max_base64: int = 512 * 1024) -> None:
        self.max_count = max_count
        self.max_base64 = max_base64
        self.thumbnails: list[Thumbnail] = []
        self.active = False
        self._keep = False
        self._size = 0
        self._header: tuple[int, int, str] = (0, 0, "PNG")
        self._parts: list[bytes] = []

    def begin(self, text: bytes) -> bool:
        """Start a block if ``text`` (the comment, stripped) opens one; True when it did."""
        match = _BEGIN_RE.match(text)
        if match is None:
            return False
        kind = (match.group(1) or b"PNG").decode("ascii").upper()
        self.active = True
        self._header = (int(match.group(2)), int(match.group(3)), "JPG" if kind == "JPEG" else kind)
        declared = int(match.group(4)) if match.group(4) else 0
        self._keep = len(self.thumbnails) < self.max_count and declared <= self.max_base64
        self._size = 0
        self._parts = []
        return True

    def feed(self, text: bytes) -> None:
        """One comment line inside a block: base64 data, or the end marker."""
        if text.startswith(b"thumbnail") and text.endswith(b"end"):
            self.active = False
            if self._keep:
                thumb = self._decode()
                if thumb is not None:
                    self.thumbnails.append(thumb)
            self._parts = []
            return
        if self._keep:
            self._size += len(text)
            if self._size > self.max_base64:
                self._keep = False
                self._parts = []
            else:
                self._parts.append(text)

    def _decode(self) -> Optional[Thumbnail]:
        try:
            data = base64.b64decode(b"".join(self._parts), validate=True)
        except (binascii.Error, ValueError):
            return None  # a damaged preview is not worth refusing a file over
        width, height, kind = self._header
        return Thumbnail(width, height, kind, data)
