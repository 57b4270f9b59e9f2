"""The content-addressed file store."""

from __future__ import annotations

import errno
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.errors import Invalid, NotFound, TooLarge, Unavailable
from fleet.store import BlobInfo, BlobStore
from tests.disks import small_disk

KiB = 1024


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


class FailingStream(io.RawIOBase):
    """Yields some bytes, then fails the way a full disk or a broken source does."""

    def __init__(self, good: bytes, error: OSError) -> None:
        self._good = io.BytesIO(good)
        self._error = error

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._good.read(size)
        if not chunk:
            raise self._error
        return chunk


class EndlessStream(io.RawIOBase):
    """Zeros forever, counting what was read."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = 64 * KiB if size is None or size < 0 else size
        self.served += size
        return bytes(size)


def test_put_stores_by_hash(blobs: BlobStore) -> None:
    data = b"G28\nG1 X10 Y10\n" * 1000
    digest = hashlib.sha256(data).hexdigest()

    info = blobs.put_stream(io.BytesIO(data), max_bytes=len(data), chunk_size=999)

    assert info == BlobInfo(digest, len(data), blobs.root / digest[:2] / digest[2:4] / digest)
    assert info.path.read_bytes() == data
    assert blobs.exists(digest)
    assert blobs.size(digest) == len(data)
    with blobs.open(digest) as stored:
        assert stored.read() == data
    assert list(blobs.staging_dir.iterdir()) == []


def test_same_content_is_stored_once(blobs: BlobStore) -> None:
    first = blobs.put_stream(io.BytesIO(b"same"), max_bytes=100)
    second = blobs.put_stream(io.BytesIO(b"same"), max_bytes=100)

    assert first == second
    assert files_under(blobs.root) == [first.path]


def test_an_empty_file_is_a_blob_too(blobs: BlobStore) -> None:
    info = blobs.put_stream(io.BytesIO(b""), max_bytes=10)

    assert (info.sha256, info.size) == (hashlib.sha256(b"").hexdigest(), 0)


@pytest.mark.parametrize(
    ("max_bytes", "named"), [(10 * KiB, "10 KiB"), (3 * 1024 * KiB, "3 MiB"), (999, "999 bytes")]
)
def test_too_large_names_the_limit_and_leaves_nothing(blobs: BlobStore, max_bytes: int, named: str) -> None:
    with pytest.raises(TooLarge, match=f"larger than the limit of {named}") as caught:
        blobs.put_stream(io.BytesIO(bytes(max_bytes + 1)), max_bytes=max_bytes, chunk_size=4 * KiB)

    assert caught.value.details == {"max_bytes": max_bytes}
    assert files_under(blobs.root) == []


def test_exactly_the_limit_is_accepted(blobs: BlobStore) -> None:
    info = blobs.put_stream(io.BytesIO(bytes(4096)), max_bytes=4096, chunk_size=1000)

    assert info.size == 4096


def test_an_endless_upload_is_cut_off_just_past_the_limit(blobs: BlobStore) -> None:
    stream = EndlessStream()

    with pytest.raises(TooLarge):
        blobs.put_stream(stream, max_bytes=100 * KiB, chunk_size=64 * KiB)

    assert stream.served == 100 * KiB + 1
    assert files_under(blobs.root) == []


@pytest.mark.parametrize(
    "bad", ["../../../etc/passwd", "A" * 64, "a" * 63, "a" * 65, "g" * 64, "", "a" * 62 + "/."]
)
def test_a_hash_that_is_not_sha256_hex_is_invalid(blobs: BlobStore, bad: str) -> None:
    for use in (blobs.path, blobs.exists, blobs.open, blobs.delete, blobs.size):
        with pytest.raises(Invalid, match="64 lowercase hexadecimal digits"):
            use(bad)


def test_missing_blob(blobs: BlobStore) -> None:
    missing = "0" * 64
    assert not blobs.exists(missing)
    assert blobs.delete(missing) is False
    with pytest.raises(NotFound, match=f"no stored file has the hash {missing}"):
        blobs.open(missing)
    with pytest.raises(NotFound):
        blobs.size(missing)


def test_delete(blobs: BlobStore) -> None:
    info = blobs.put_stream(io.BytesIO(b"bye"), max_bytes=10)

    assert blobs.delete(info.sha256) is True
    assert not blobs.exists(info.sha256)
    assert not info.path.exists()


def test_disk_full_while_receiving_leaves_nothing(blobs: BlobStore) -> None:
    stream = FailingStream(bytes(10 * KiB), OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    with pytest.raises(Unavailable, match="not enough disk space") as caught:
        blobs.put_stream(stream, max_bytes=1024 * KiB, chunk_size=KiB)

    assert caught.value.status == 507  # Insufficient Storage
    assert files_under(blobs.root) == []


def test_another_io_error_says_what_it_was(blobs: BlobStore) -> None:
    stream = FailingStream(b"partial", OSError(errno.EIO, os.strerror(errno.EIO)))

    with pytest.raises(Unavailable, match="could not store the file") as caught:
        blobs.put_stream(stream, max_bytes=KiB)

    assert str(caught.value).endswith(os.strerror(errno.EIO))

    assert files_under(blobs.root) == []


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB filesystem, to fill up for real (the simulated disk-full test runs anywhere)."""
    with small_disk(tmp_path / "tiny", "64k") as mountpoint:
        yield mountpoint


def test_a_really_full_disk_leaves_nothing(tiny_disk: Path) -> None:
    blobs = BlobStore(tiny_disk / "blobs")
    fits = blobs.put_stream(io.BytesIO(b"small"), max_bytes=1024 * KiB)

    with pytest.raises(Unavailable, match="not enough disk space") as caught:
        blobs.put_stream(io.BytesIO(os.urandom(256 * KiB)), max_bytes=1024 * KiB, chunk_size=16 * KiB)

    assert caught.value.details == {"errno": "ENOSPC"}
    assert files_under(blobs.root) == [fits.path]
    # The space was given back: a small upload still works.
    assert blobs.put_stream(io.BytesIO(b"after"), max_bytes=KiB).size == 5


def test_staging_keeps_only_what_is_committed(blobs: BlobStore) -> None:
    with blobs.staging(max_bytes=KiB) as staged:
        staged.write_from(io.BytesIO(b"G28\n"))
        staged.write(b"M104 S200\n")
        with staged.open() as reader:  # e.g. to analyse it before accepting it
            assert reader.read() == b"G28\nM104 S200\n"
        info = staged.commit()
        assert staged.committed == info

    assert info.path.read_bytes() == b"G28\nM104 S200\n"
    assert info.sha256 == hashlib.sha256(b"G28\nM104 S200\n").hexdigest()
    assert list(blobs.staging_dir.iterdir()) == []
    with pytest.raises(RuntimeError, match="already committed"):
        staged.write(b"more")


def test_leaving_staging_without_commit_discards(blobs: BlobStore) -> None:
    with blobs.staging(max_bytes=KiB) as staged:
        staged.write(b"rejected by the analysis")
        assert staged.path.exists()

    assert not staged.path.exists()
    assert files_under(blobs.root) == []
    with pytest.raises(RuntimeError, match="already discarded"):
        staged.commit()


def test_an_error_inside_staging_discards(blobs: BlobStore) -> None:
    with pytest.raises(Invalid), blobs.staging(max_bytes=KiB) as staged:
        staged.write(b"M303 ; unsafe")
        raise Invalid("line 1: M303 is not allowed")

    assert files_under(blobs.root) == []


def test_abandoned_staging_files_are_swept_and_uploads_in_progress_kept(blobs: BlobStore) -> None:
    blobs.staging_dir.mkdir(parents=True)
    abandoned = blobs.staging_dir / "upload-crashed"  # nobody holds its lock: a crash left it
    abandoned.write_bytes(b"half")
    with blobs.staging(max_bytes=KiB) as fresh:
        fresh.write(b"G28\n")
        assert blobs.remove_abandoned_staging() == 1
        assert fresh.path.exists()
    assert not abandoned.exists()
