from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.node import DownloadError, HttpFetcher
from fleet.protocol import AckStatus, CommandType, JobRef
from tests.http_stub import Reply, Request, serving

from .conftest import Harness

TOKEN = "printer-token"
GCODE = b"".join(b"G1 X%d Y%d\n" % (i, i) for i in range(2000))


class FileServer:
    """Serves ``files`` to requests carrying the printer's token; ``base`` is where it listens."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"/jobs/7/file": GCODE}
        self.base = ""

    def answer(self, request: Request) -> Reply:
        body = self.files.get(request.path)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Reply(401)
        if body is None:
            return Reply(404)
        return Reply(200, body)

    def ref(self, path: str = "/jobs/7/file", **overrides: object) -> JobRef:
        body = self.files.get(path, b"")
        values = {
            "job_id": 7,
            "url": self.base + path,
            "sha256": hashlib.sha256(body).hexdigest(),
            "size": len(body),
            "filename": "part.gcode",
        }
        values.update(overrides)
        return JobRef(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[FileServer]:
    files = FileServer()
    with serving(files.answer) as url:
        files.base = url
        yield files


def test_fetches_and_checks_a_file(server: FileServer, tmp_path: Path) -> None:
    path = HttpFetcher(TOKEN, chunk_size=1000).fetch(server.ref(), tmp_path)
    assert path.read_bytes() == GCODE


@pytest.mark.parametrize(
    ("overrides", "fetcher", "message"),
    [
        ({"sha256": "0" * 64}, HttpFetcher(TOKEN), "sha256 of the downloaded file does not match"),
        ({"size": len(GCODE) - 1}, HttpFetcher(TOKEN), "more than the announced"),
        ({"size": len(GCODE) + 1}, HttpFetcher(TOKEN), f"got {len(GCODE)} bytes"),
        ({}, HttpFetcher("wrong"), "HTTP 401"),
        ({"url": "http://127.0.0.1:1/nothing"}, HttpFetcher(TOKEN, connect_timeout=2), "download failed"),
        ({}, HttpFetcher(TOKEN, max_bytes=100), "over this printer's 100-byte limit"),
    ],
)
def test_bad_downloads_fail_and_leave_nothing(
    server: FileServer, tmp_path: Path, overrides: dict, fetcher: HttpFetcher, message: str
) -> None:
    with pytest.raises(DownloadError, match=message):
        fetcher.fetch(server.ref(**overrides), tmp_path / "dl")
    assert not (tmp_path / "dl").exists() or not list((tmp_path / "dl").iterdir())


def test_node_prints_a_file_fetched_over_http(server: FileServer, harness: Harness) -> None:
    harness.start(fetcher=HttpFetcher(TOKEN))
    ref = server.ref()
    harness.send(harness.command(CommandType.DISPATCH, 7, url=ref.url, content=GCODE))
    assert harness.link.acks()[-1].status is AckStatus.ACCEPTED
    stored = harness.tmp / "printer" / harness.printer.started[0]
    assert stored.read_bytes() == GCODE


def test_node_answers_failed_on_a_hash_mismatch_and_keeps_no_file(
    server: FileServer, harness: Harness
) -> None:
    harness.start(fetcher=HttpFetcher(TOKEN))
    ref = server.ref(sha256=hashlib.sha256(b"another file").hexdigest())
    harness.send(harness.command(CommandType.DISPATCH, 7, url=ref.url, sha256=ref.sha256, size=ref.size))
    ack = harness.link.acks()[-1]
    assert ack.status is AckStatus.FAILED and "sha256" in ack.reason
    assert harness.printer.started == []
    assert not list((harness.tmp / "downloads").iterdir())
    assert not (harness.tmp / "printer").exists()
