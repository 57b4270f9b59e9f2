"""Uploaded files, stored by content hash: ``root/ab/cd/<sha256>``, never under a name a user chose.

An upload is streamed into a staging file under ``root/tmp`` (the same filesystem, so moving it
into place is atomic), hashed as it goes and capped at a size; only a committed upload becomes a
blob. A failure of any kind leaves nothing half-written behind. What slicers package (binary
G-code, a sliced 3MF) is stored as the plain-text G-code it holds, which every printer can print;
the limit applies to that text.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional, cast

from ..errors import InsufficientStorage, Invalid, NotFound, TooLarge, Unavailable
from ..gcode.intake import Decoded, Prefixed, open_plain, seekable

MiB = 1024 * 1024

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def is_sha256_hex(value: object) -> bool:
    """True for a SHA-256 digest written as 64 lowercase hex digits (the only names blobs have)."""
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int
    path: Path


def _describe_size(size: int) -> str:
    if size >= MiB and size % MiB == 0:
        return f"{size // MiB} MiB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


def _storage_error(exc: OSError, root: Path) -> Unavailable:
    if exc.errno in _NO_SPACE:
        return InsufficientStorage(
            f"the fleet's disk is full: not enough disk space to store the file under {root}; nothing "
            "of it was kept. A manager must free some space, then the same upload will work",
            details={"errno": errno.errorcode.get(exc.errno or 0, exc.errno)},
        )
    return Unavailable(f"could not store the file under {root}: {exc.strerror or exc}")


class StagedBlob:
    """An upload being written to a staging file: commit it to keep it, or discard it.

    Get one from :meth:`BlobStore.staging`, which discards it if the block ends without a commit.
    """

    def __init__(self, blobs: BlobStore, path: Path, file: BinaryIO, max_bytes: int) -> None:
        self._blobs = blobs
        self._path = path
        self._file: Optional[BinaryIO] = file
        self._max_bytes = max_bytes
        self._hash = hashlib.sha256()
        self._size = 0
        self._committed: Optional[BlobInfo] = None

    @property
    def path(self) -> Path:
        """Where the staging file is (write through this object, not through the path)."""
        return self._path

    @property
    def size(self) -> int:
        return self._size

    @property
    def sha256(self) -> str:
        """The hash of what was written so far."""
        return self._hash.hexdigest()

    @property
    def committed(self) -> Optional[BlobInfo]:
        return self._committed

    def write(self, data: bytes) -> None:
        """Append ``data``; :class:`TooLarge` (and the staging file is gone) past the limit."""
        file = self._writable()
        if self._size + len(data) > self._max_bytes:
            self.discard()
            raise self._too_large()
        try:
            file.write(data)
        except OSError as exc:
            self.discard()
            raise _storage_error(exc, self._blobs.root) from exc
        self._hash.update(data)
        self._size += len(data)

    def write_from(
        self, stream: BinaryIO, *, chunk_size: Optional[int] = None, plate: Optional[int] = None
    ) -> int:
        """Copy ``stream`` to its end, as plain G-code (see :func:`fleet.gcode.intake.open_plain`;
        ``plate`` picks a plate of a 3MF); returns the bytes written. Errors as :meth:`write`, and
        :class:`Invalid` for a damaged container (the staging file is gone then too).
        """
        chunk_size = chunk_size or self._blobs.chunk_size
        try:
            with self._unpacked(stream, plate) as source:
                try:
                    return self._copy(source, chunk_size)
                except TooLarge as exc:
                    if not isinstance(source, Decoded):
                        raise
                    raise TooLarge(
                        f"the G-code this file holds is larger than the limit of "
                        f"{_describe_size(self._max_bytes)} once unpacked",
                        details=exc.details,
                    ) from None
        except (Invalid, TooLarge):
            self.discard()
            raise

    @contextmanager
    def _unpacked(self, stream: BinaryIO, plate: Optional[int]) -> Iterator[BinaryIO]:
        spool: Optional[BinaryIO] = None
        try:
            if not seekable(stream):
                head = stream.read(4)
                if head.startswith(b"PK\x03\x04"):  # a ZIP is read from its end: keep it aside first
                    spool = self._spool(head, stream)
                    stream = spool
                else:
                    stream = cast(BinaryIO, _Capped(cast(BinaryIO, Prefixed(head, stream)), self._max_bytes))
            else:
                stream = cast(BinaryIO, _Capped(stream, self._max_bytes))
            try:
                plain = open_plain(stream, plate=plate)
            except OSError as exc:
                self.discard()
                raise _storage_error(exc, self._blobs.root) from exc
            try:
                yield plain
            finally:
                if plain is not stream:  # a decoder or an open archive; the upload itself stays open
                    plain.close()
        finally:
            if spool is not None:
                spool.close()

    def _spool(self, head: bytes, stream: BinaryIO) -> BinaryIO:
        """The whole upload in an unnamed file beside the staging file (gone once closed)."""
        try:
            spool = cast(BinaryIO, tempfile.TemporaryFile(dir=self._blobs.staging_dir))  # noqa: SIM115 (closed by _unpacked)
        except OSError as exc:
            self.discard()
            raise _storage_error(exc, self._blobs.root) from exc
        try:
            spool.write(head)
            size = len(head)
            while chunk := stream.read(self._blobs.chunk_size):
                size += len(chunk)
                if size > self._max_bytes:
                    raise self._too_large()
                spool.write(chunk)
            spool.seek(0)
        except OSError as exc:
            spool.close()
            self.discard()
            raise _storage_error(exc, self._blobs.root) from exc
        except BaseException:
            spool.close()
            raise
        return spool

    def _too_large(self) -> TooLarge:
        return TooLarge(
            f"the file is larger than the limit of {_describe_size(self._max_bytes)}",
            details={"max_bytes": self._max_bytes},
        )

    def _copy(self, stream: BinaryIO, chunk_size: int) -> int:
        copied = 0
        while True:
            # Never read more than one byte past the limit: that byte is enough to refuse.
            want = min(chunk_size, self._max_bytes - self._size + 1)
            try:
                chunk = stream.read(want)
            except OSError as exc:
                self.discard()
                raise _storage_error(exc, self._blobs.root) from exc
            if not chunk:
                return copied
            self.write(chunk)
            copied += len(chunk)

    def open(self) -> BinaryIO:
        """A new reader of what was written so far (to analyse the upload before keeping it)."""
        file = self._writable()
        try:
            file.flush()
            return open(self._path, "rb")
        except OSError as exc:
            self.discard()
            raise _storage_error(exc, self._blobs.root) from exc

    def commit(self) -> BlobInfo:
        """Keep the upload as a blob (or drop it if that content is already stored)."""
        file = self._writable()
        sha256 = self.sha256
        target = self._blobs.path(sha256)
        try:
            file.flush()
            os.fsync(file.fileno())
            # Moved (or dropped) while still open and locked, so no sweep of abandoned staging
            # files can take it for one between the close and the rename.
            if target.exists():
                self._path.unlink()
            else:
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.replace(self._path, target)
                _fsync_directory(target.parent)
            file.close()
            self._file = None
        except OSError as exc:
            self.discard()
            raise _storage_error(exc, self._blobs.root) from exc
        self._committed = BlobInfo(sha256, self._size, target)
        return self._committed

    def discard(self) -> None:
        """Delete the staging file (harmless when already committed or discarded)."""
        if self._file is not None:
            # A failed final flush does not matter: the file is going anyway.
            with suppress(OSError):
                self._file.close()
            self._file = None
        if self._committed is None:
            with suppress(FileNotFoundError):
                self._path.unlink()

    def _writable(self) -> BinaryIO:
        if self._file is None:
            state = "committed" if self._committed is not None else "discarded"
            raise RuntimeError(f"this upload was already {state}")
        return self._file


class _Capped(io.RawIOBase):
    """An upload that may not yield more than ``limit`` bytes: a container's own sizes are not
    trusted to bound how much of it is read. Seekable when the upload is (a ZIP needs that)."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        super().__init__()
        self._stream = stream
        self._limit = limit
        self._seekable = seekable(stream)
        self._count = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self._seekable:
            raise io.UnsupportedOperation("seek")
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell() if self._seekable else self._count

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        self._count += len(data)
        if (self._stream.tell() if self._seekable else self._count) > self._limit:
            raise TooLarge(
                f"the file is larger than the limit of {_describe_size(self._limit)}",
                details={"max_bytes": self._limit},
            )
        buffer[: len(data)] = data
        return len(data)


def _fsync_directory(path: Path) -> None:
    """Make a rename durable; some filesystems cannot open directories, which is fine."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class BlobStore:
    """Content-addressed files under ``root``."""

    def __init__(self, root: Path, *, chunk_size: int = MiB) -> None:
        self._root = Path(root)
        self.chunk_size = chunk_size

    @property
    def root(self) -> Path:
        return self._root

    @property
    def staging_dir(self) -> Path:
        return self._root / "tmp"

    def path(self, sha256: str) -> Path:
        """Where the blob with this hash lives; :class:`Invalid` unless it is 64 lowercase hex digits."""
        if not is_sha256_hex(sha256):
            raise Invalid("a file hash must be 64 lowercase hexadecimal digits (SHA-256)", field="sha256")
        return self._root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            raise self._missing(sha256) from None

    def open(self, sha256: str) -> BinaryIO:
        """The blob for reading; :class:`NotFound` when it is not stored."""
        try:
            return open(self.path(sha256), "rb")
        except FileNotFoundError:
            raise self._missing(sha256) from None

    def delete(self, sha256: str) -> bool:
        """Remove a blob; returns whether it was there."""
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True

    @contextmanager
    def staging(self, max_bytes: int) -> Iterator[StagedBlob]:
        """A staging file for one upload, deleted when the block ends unless it was committed."""
        try:
            self.staging_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.staging_dir, prefix="upload-")
        except OSError as exc:
            raise _storage_error(exc, self._root) from exc
        # Locked for as long as this process writes it: a file nobody locks was left by a crash.
        fcntl.flock(fd, fcntl.LOCK_EX)
        staged = StagedBlob(self, Path(name), os.fdopen(fd, "wb"), max_bytes)
        try:
            yield staged
        finally:
            staged.discard()

    def put_stream(self, stream: BinaryIO, *, max_bytes: int, chunk_size: Optional[int] = None) -> BlobInfo:
        """Store everything ``stream`` yields, up to ``max_bytes``."""
        with self.staging(max_bytes) as staged:
            staged.write_from(stream, chunk_size=chunk_size)
            return staged.commit()

    def stored(self) -> Iterator[tuple[str, float]]:
        """Every stored blob's hash with its last change (epoch seconds); staging files excluded."""
        for first in sorted(self._root.glob("[0-9a-f][0-9a-f]")):
            for entry in first.glob("[0-9a-f][0-9a-f]/*"):
                if not is_sha256_hex(entry.name) or entry.parent.parent != first:
                    continue
                try:
                    yield entry.name, entry.stat().st_mtime
                except FileNotFoundError:
                    continue

    def remove_abandoned_staging(self) -> int:
        """Delete staging files no living process is writing (left by a crash); returns how many.

        Each upload holds a lock on its staging file until it is committed or discarded, so this is
        safe while other processes upload into the same directory.
        """
        removed = 0
        try:
            entries = list(self.staging_dir.iterdir())
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                fd = os.open(entry, os.O_RDONLY)
            except (FileNotFoundError, IsADirectoryError):
                continue  # committed or discarded meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                entry.unlink()  # under the lock, which goes with the descriptor
                removed += 1
            except BlockingIOError:
                continue  # an upload in progress
            except FileNotFoundError:
                continue
            finally:
                os.close(fd)
        return removed

    @staticmethod
    def _missing(sha256: str) -> NotFound:
        return NotFound(f"no stored file has the hash {sha256}", field="sha256")
