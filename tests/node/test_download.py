from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fleet.node import DownloadError, HttpFetcher
from fleet.protocol import AckStatus, CommandType, JobRef

from .conftest import Harness

TOKEN = "printer-token"
GCODE = b"".join(b"G1 X%d Y%d\n" % (i, i) for i in range(2000))


class FileServer:
    """Serves ``files`` on 127.0.0.1 to requests carrying the printer's token."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"/jobs/7/file": GCODE}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = server.files.get(self.path)
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self.send_response(401)
                    body = b""
                elif body is None:
                    self.send_response(404)
                    body = b""
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

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
    thread = threading.Thread(target=files.httpd.serve_forever, daemon=True)
    thread.start()
    yield files
    files.httpd.shutdown()
    files.httpd.server_close()
    thread.join(5)


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
