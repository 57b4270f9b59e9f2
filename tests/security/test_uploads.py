"""Hostile uploads: names that try to leave the blob store, bodies too large or without end, files that
are not text, lines of a megabyte. Each is answered clearly and leaves nothing half-written behind.

Where the answer depends on the HTTP server (a body larger than declared, a chunked body that never
ends), the test talks to the real waitress server over a socket.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import select
import socket
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import requests

from fleet.models import LabSettingsChanges, Member, Role
from fleet.server import Fleet

from .conftest import GCODE, Browser, LiveServer, blob_files, db_state

BLOB_NAME = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}$")
KiB = 1024
MiB = 1024 * KiB


def people(fleet: Fleet) -> tuple[Member, str, Member]:
    manager, _ = fleet.app.members.add_member("manager", Role.MANAGER)
    alice, token = fleet.app.members.add_member("alice", Role.MEMBER)
    return alice, token, manager


def set_limit(fleet: Fleet, manager: Member, max_bytes: int, server: LiveServer | None = None) -> None:
    """Change the lab's limit as the CLI (or another fleet process) would, not through this server.

    A server learns the limit from the next request it serves: with ``server``, one is made.
    """
    fleet.app.lab.update(manager, LabSettingsChanges(max_upload_bytes=max_bytes))
    if server is not None:
        assert requests.get(f"{server.url}/api/v1/health", timeout=10).status_code == 200


def jobs(fleet: Fleet) -> list[Any]:
    return fleet.store.list_jobs()


def assert_only_blobs(fleet: Fleet) -> None:
    """The blob store holds content-named files and nothing else: no staging file, no user name."""
    stray = [name for name in blob_files(fleet) if not BLOB_NAME.match(name)]
    assert stray == [], f"files in the blob store that are not blobs: {stray}"


def assert_nothing_kept(fleet: Fleet, before: Any) -> None:
    assert_only_blobs(fleet)
    assert (db_state(fleet), blob_files(fleet)) == before, "a refused upload left a job or a file behind"


def snapshot(fleet: Fleet) -> Any:
    return db_state(fleet), blob_files(fleet)


@pytest.fixture
def api(small_fleet: Fleet) -> Any:
    from fleet.api import create_app

    app = create_app(small_fleet.app, {"TESTING": True})
    _, token, manager = people(small_fleet)
    return app, token, manager


def post_file(
    app: Any, token: str, content: bytes, name: str = "part.gcode", url: str = "/api/v1/jobs"
) -> Any:
    return app.test_client().post(
        url, headers={"Authorization": f"Bearer {token}"}, data={"file": (io.BytesIO(content), name)}
    )


# -- names ----------------------------------------------------------------------------------------

NAMES = [
    ("../../etc/passwd.gcode", "passwd.gcode"),
    ("/etc/cron.d/evil.gcode", "evil.gcode"),
    ("..\\..\\Windows\\System32\\part.gcode", "part.gcode"),
    ("C:\\Users\\ada\\benchy.gcode", "benchy.gcode"),
    ("part\x00.sh.gcode", "part.sh.gcode"),
    ("\u202eedoc.gcode", "edoc.gcode"),  # a right-to-left override that would disguise the name
    ("..", "upload.gcode"),
    ("../", "upload.gcode"),
    ("x" * 5000 + ".gcode", "x" * 114 + ".gcode"),
]


@pytest.mark.parametrize(("sent", "kept"), NAMES, ids=[repr(n[:24]) for n, _ in NAMES])
def test_a_hostile_file_name_is_only_a_sanitised_label(
    api: Any, small_fleet: Fleet, sent: str, kept: str
) -> None:
    app, token, _ = api
    response = post_file(app, token, GCODE, sent)
    assert response.status_code == 201, response.get_json()
    [job] = response.get_json()["jobs"]
    assert job["filename"] == kept
    assert job["file_sha256"] == hashlib.sha256(GCODE).hexdigest()
    assert_only_blobs(small_fleet)
    data_root = small_fleet.config.data_dir.parent
    named = [p for p in data_root.rglob("*") if p.name in (kept, "passwd.gcode", "evil.gcode")]
    assert named == [], f"a file was created under the uploaded name: {named}"


def test_hostile_names_through_the_dashboard_and_the_real_server(live_server: LiveServer) -> None:
    fleet = live_server.fleet
    _, token, _ = people(fleet)
    for sent, kept in NAMES[:4]:
        answer = requests.post(
            f"{live_server.url}/api/v1/jobs",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": (sent, GCODE + sent.encode()[:8] + b"\n")},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["jobs"][0]["filename"] == kept
    assert_only_blobs(fleet)

    from fleet.api import create_app

    member, _ = fleet.app.members.add_member("bob", Role.MEMBER)
    fleet.app.identity.set_password(member, member.id, "correct horse battery")
    browser = Browser(create_app(fleet.app)).signed_in("bob")
    for sent, kept in NAMES:
        response = browser.post(
            "/submit/confirm", {"file": (io.BytesIO(GCODE + b"; " + kept.encode() + b"\n"), sent)}
        )
        assert response.status_code == 303, response.get_data(as_text=True)[:300]
    names = [j.filename for j in fleet.store.list_jobs(member_id=member.id)]
    assert names == [kept for _, kept in NAMES]
    assert_only_blobs(fleet)


# -- sizes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/jobs", "/api/v1/analyze"])
@pytest.mark.parametrize("over", [1, 300 * KiB], ids=["a byte over", "far over"])
def test_a_file_over_the_labs_limit_is_413_and_leaves_nothing(
    api: Any, small_fleet: Fleet, url: str, over: int
) -> None:
    app, token, manager = api
    set_limit(small_fleet, manager, 64 * KiB)
    before = snapshot(small_fleet)
    content = GCODE + b";" * (64 * KiB - len(GCODE) + over)
    response = post_file(app, token, content, url=url)
    assert response.status_code == 413
    body = response.get_json()
    assert "limit" in body["message"], body
    assert_nothing_kept(small_fleet, before)


def test_the_dashboard_refuses_an_oversized_file_and_keeps_nothing(small_fleet: Fleet) -> None:
    from fleet.api import create_app

    _, _, manager = people(small_fleet)
    member, _ = small_fleet.app.members.add_member("bob", Role.MEMBER)
    small_fleet.app.identity.set_password(member, member.id, "correct horse battery")
    set_limit(small_fleet, manager, 64 * KiB)
    browser = Browser(create_app(small_fleet.app)).signed_in("bob")
    before = snapshot(small_fleet)
    big = GCODE + b";" * (80 * KiB)
    for url in ("/submit", "/submit/confirm"):
        response = browser.post(url, {"file": (io.BytesIO(big), "big.gcode")})
        assert response.status_code == 413, url
        assert "larger than" in response.get_data(as_text=True), url
    assert_nothing_kept(small_fleet, before)


def raw_request(server: LiveServer, head: str) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(head.encode("latin-1"))
    return sock


def read_status(sock: socket.socket) -> tuple[int, str]:
    """The status and what the server answered, read until it closes the connection."""
    data = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    assert data, "the server did not answer"
    return int(data.split(b" ", 2)[1]), data.decode("latin-1")


def upload_head(server: LiveServer, token: str, framing: str) -> str:
    return (
        "POST /api/v1/jobs HTTP/1.1\r\n"
        f"Host: {server.host}:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: multipart/form-data; boundary=XyZ\r\n"
        f"{framing}\r\n\r\n"
    )


def test_a_declared_oversized_body_is_refused_before_it_is_sent(live_server: LiveServer) -> None:
    fleet = live_server.fleet
    _, token, manager = people(fleet)
    set_limit(fleet, manager, 256 * KiB, live_server)
    before = snapshot(fleet)
    # Declare a body over the limit and send none of it: the answer must not wait for the body.
    sock = raw_request(live_server, upload_head(live_server, token, f"Content-Length: {1 * MiB}"))
    with sock:
        status, text = read_status(sock)
    assert status == 413, text
    assert_nothing_kept(fleet, before)


def endless_upload(server: LiveServer, token: str, give_up_after: int) -> tuple[int, int, str]:
    """Send a chunked multipart body that never ends; returns (bytes sent, status, answer)."""
    sock = raw_request(server, upload_head(server, token, "Transfer-Encoding: chunked"))
    preamble = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="endless.gcode"\r\n\r\nG28\n'
    line = b"G1 X10 Y10 E1\n" * 4681  # 64 KiB of moves
    sent = 0
    with sock:
        sock.setblocking(False)
        for payload in [preamble] + [line] * (give_up_after // len(line)):
            chunk = b"%x\r\n%s\r\n" % (len(payload), payload)
            view = memoryview(chunk)
            while view:
                readable, writable, _ = select.select([sock], [sock], [], 10)
                if readable:  # the server answered (and stopped reading)
                    sock.setblocking(True)
                    sock.settimeout(10)
                    status, text = read_status(sock)
                    return sent, status, text
                assert writable, "the server neither read nor answered for 10 s"
                try:
                    n = sock.send(view)
                except (BrokenPipeError, ConnectionResetError):
                    # It answered and closed between the select and the send: the answer is still queued.
                    sock.setblocking(True)
                    sock.settimeout(10)
                    status, text = read_status(sock)
                    return sent, status, text
                sent += n
                view = view[n:]
    raise AssertionError(f"the server was still reading after {sent // MiB} MiB of an endless body")


def test_an_endless_chunked_body_is_cut_off_at_the_labs_limit(live_server: LiveServer) -> None:
    fleet = live_server.fleet
    _, token, manager = people(fleet)
    set_limit(fleet, manager, 256 * KiB, live_server)
    before = snapshot(fleet)
    sent, status, text = endless_upload(live_server, token, give_up_after=256 * MiB)
    assert status == 413, text
    assert "exceeds" in text or "limit" in text, text
    # What the server read is the limit and its envelope; the rest sat in the sockets' buffers.
    assert sent < 32 * MiB, f"the server took {sent // MiB} MiB of a body whose limit is 256 KiB"
    assert_nothing_kept(fleet, before)
    assert requests.get(f"{live_server.url}/api/v1/health", timeout=10).status_code == 200


def test_the_servers_cut_off_follows_the_labs_setting(live_server: LiveServer) -> None:
    fleet = live_server.fleet
    _, token, manager = people(fleet)
    _, manager_token = fleet.app.members.add_member("boss", Role.MANAGER)
    set_limit(fleet, manager, 64 * KiB, live_server)
    url = f"{live_server.url}/api/v1"
    member = {"Authorization": f"Bearer {token}"}
    content = GCODE + b"; padding\n" * (40 * KiB)
    with raw_request(
        live_server, upload_head(live_server, token, f"Content-Length: {len(content) + 200}")
    ) as sock:
        assert read_status(sock)[0] == 413

    raised = requests.patch(
        f"{url}/settings",
        headers={"Authorization": f"Bearer {manager_token}"},
        json={"max_upload_bytes": 1 * MiB},
        timeout=10,
    )
    assert raised.status_code == 200
    answer = requests.post(f"{url}/jobs", headers=member, files={"file": ("a.gcode", content)}, timeout=30)
    assert answer.status_code == 201, answer.text
    sent, status, _ = endless_upload(live_server, token, give_up_after=256 * MiB)
    assert status == 413 and sent < 32 * MiB + 1 * MiB
    assert_only_blobs(fleet)


# -- content --------------------------------------------------------------------------------------

REFUSED = [
    (b"\x89PNG\r\n\x1a\n" + os.urandom(4096), "PNG image"),
    (b"PK\x03\x04" + os.urandom(4096), "ZIP archive"),
    (b"GCDE\x01\x00\x00\x00" + os.urandom(4096), "binary G-code"),
    (GCODE + b"G1 X1\x00\x01\x02 Y2\n" + GCODE, "binary data (a NUL byte)"),
    (bytes(range(1, 256)) * 64, "no G-code commands"),
    (b"G1 X" + b"9" * MiB + b"\n", "line 1 is longer than 64 KiB"),
    (b";" + b"A" * MiB + b"\nG28\n", "line 1 is longer than 64 KiB"),
    (GCODE * 3 + b"M117 " + b"\xff" * MiB, "line 13 is longer than 64 KiB"),
]


@pytest.mark.parametrize(("content", "says"), REFUSED, ids=[s for _, s in REFUSED])
def test_content_that_is_not_gcode_is_a_clear_422_that_keeps_nothing(
    api: Any, small_fleet: Fleet, content: bytes, says: str
) -> None:
    app, token, _ = api
    before = snapshot(small_fleet)
    for url in ("/api/v1/jobs", "/api/v1/analyze"):
        response = post_file(app, token, content, url=url)
        assert response.status_code == 422, (url, response.get_json())
        body = response.get_json()
        assert says in body["message"] and body["field"] == "file", body
    assert_nothing_kept(small_fleet, before)


def test_text_that_is_not_utf8_is_analysed_byte_for_byte(api: Any, small_fleet: Fleet) -> None:
    """G-code is ASCII; comments may be Latin-1 or broken UTF-8. The fleet reads bytes, never decodes
    a command, shows comment text with replacement characters, and keeps the file exactly as sent."""
    app, token, _ = api
    content = (
        b"; generated by Caf\xe9Slicer 1.0\n; filament_type = PLA\n; object = pi\xe8ce \xff\xfe\n"
        + GCODE
        + b"M117 Impression termin\xe9e \xc3\x28\n"
    )
    response = post_file(app, token, content, name="pi\u00e8ce.gcode")
    assert response.status_code == 201, response.get_json()
    [job] = response.get_json()["jobs"]
    assert job["filename"] == "pi\u00e8ce.gcode"
    assert job["file_sha256"] == hashlib.sha256(content).hexdigest()
    assert job["analysis"]["material"] == "PLA"
    stored = small_fleet.blobs.path(job["file_sha256"]).read_bytes()
    assert stored == content


@pytest.mark.parametrize("max_line", [64 * KiB, 16 * MiB], ids=["default rule", "lab allows 16 MiB lines"])
def test_a_megabyte_line_costs_little_memory(small_fleet: Fleet, max_line: int) -> None:
    """Refused under the default rule; analysed without holding more than a few copies of it when a
    lab allows such lines. Either way the answer is clear and nothing half-written remains."""
    from fleet.errors import Invalid

    _, _, manager = people(small_fleet)
    alice = small_fleet.store.get_member_by_name("alice")
    small_fleet.app.lab.update(manager, LabSettingsChanges(rules={"max_line_length": max_line}))
    content = GCODE + b"; " + b"note " * (MiB // 5) + b"\n" + GCODE
    before = snapshot(small_fleet)
    tracemalloc.start()
    try:
        if max_line < MiB:
            with pytest.raises(Invalid, match="line 5 is longer than 64 KiB"):
                small_fleet.app.intake.submit_job(alice, io.BytesIO(content), filename="long.gcode")
        else:
            small_fleet.app.intake.submit_job(alice, io.BytesIO(content), filename="long.gcode")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB, f"a 1 MiB line took {peak / MiB:.1f} MiB at the peak"
    if max_line < MiB:
        assert_nothing_kept(small_fleet, before)
    else:
        assert [j.state.value for j in jobs(small_fleet)] == ["queued"]
        assert_only_blobs(small_fleet)


def test_staging_left_by_a_refusal_is_never_reachable_by_name(api: Any, small_fleet: Fleet) -> None:
    """A refused upload's staging file is gone, and the printer download path takes only a hash."""
    app, token, _ = api
    post_file(app, token, b"\x89PNG\r\n\x1a\n")
    staging = Path(small_fleet.blobs.staging_dir)
    assert not staging.exists() or list(staging.iterdir()) == []
    from fleet.errors import Invalid

    for name in ("../../etc/passwd", "tmp/upload-x", "A" * 64):
        with pytest.raises(Invalid, match="64 lowercase hexadecimal"):
            small_fleet.blobs.path(name)


def test_a_file_name_with_markup_is_shown_as_text(small_fleet: Fleet) -> None:
    """The name a member's browser sends is shown on the analysis and job pages, escaped."""
    from fleet.api import create_app

    member, _ = small_fleet.app.members.add_member("bob", Role.MEMBER)
    small_fleet.app.identity.set_password(member, member.id, "correct horse battery")
    browser = Browser(create_app(small_fleet.app)).signed_in("bob")
    name = '<img src=x onerror="alert(1)">.gcode'
    page = browser.post("/submit", {"file": (io.BytesIO(GCODE), name)}).get_data(as_text=True)
    assert "<img src=x" not in page and "&lt;img src=x" in page
    assert browser.post("/submit/confirm", {"file": (io.BytesIO(GCODE), name)}).status_code == 303
    [job] = small_fleet.store.list_jobs(member_id=member.id)
    page = browser.http.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "<img src=x" not in page and "&lt;img src=x" in page
