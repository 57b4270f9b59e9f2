"""The photo of the plate after a fleet job: taken from a real local HTTP webcam, bounded, never fatal."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from fleet.client import FleetClient
from fleet.node import PlateReporter, SnapshotError, Webcam, WebcamLogin
from fleet.protocol import AckStatus, CommandType, EventType
from tests.http_stub import Reply, Request, serving

from .conftest import Harness

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32 + b"\xff\xd9"


@contextmanager
def webcam_and_fleet() -> Iterator[tuple[str, str, list[Request]]]:
    """A webcam that always has a JPEG and a fleet that takes every photo, keeping what it was sent."""
    sent: list[Request] = []

    def fleet(request: Request) -> Reply:
        sent.append(request)
        return Reply(204)

    with serving(lambda r: Reply(200, JPEG, "image/jpeg")) as webcam, serving(fleet) as fleet_url:
        yield webcam, fleet_url, sent


def test_the_webcam_photo_is_checked_and_bounded() -> None:
    replies = {
        "/jpeg": Reply(200, JPEG, "image/jpeg"),
        "/html": Reply(200, b"<html>login</html>", "text/html"),
        "/big": Reply(200, JPEG + b"\x00" * 2048, "image/jpeg"),
        "/gone": Reply(404, b"", None),
    }
    with serving(lambda request: replies[request.path]) as url:
        assert Webcam(f"{url}/jpeg").snapshot() == (JPEG, "image/jpeg")
        for path, why in (("/html", "no JPEG or PNG"), ("/big", "larger than 1024"), ("/gone", "HTTP 404")):
            with pytest.raises(SnapshotError, match=why):
                Webcam(f"{url}{path}", max_bytes=1024).snapshot()
    with pytest.raises(ValueError, match="http:// or https://"):
        Webcam("file:///etc/passwd")


def test_a_webcam_that_does_not_answer_costs_only_the_timeout() -> None:
    release = threading.Event()

    def stuck(request: Request) -> Reply:
        release.wait(5)
        return Reply(200, JPEG, "image/jpeg")

    with serving(stuck) as url:
        with pytest.raises(SnapshotError, match="could not reach the webcam"):
            Webcam(url, timeout_s=0.2).snapshot()
        release.set()


def test_the_node_sends_the_photo_after_each_fleet_job_with_the_printers_token(harness: Harness) -> None:
    with webcam_and_fleet() as (webcam, fleet_url, sent):
        plate = PlateReporter(Webcam(webcam), FleetClient(fleet_url, "cfp_printer-token"), "p-1")
        harness.start(plate=plate)
        harness.send(harness.command(CommandType.DISPATCH, 7))
        harness.node.on_print_done(harness.printer.finish())
    assert EventType.JOB_DONE in [e.type for e in harness.link.events()]
    [upload] = sent
    assert (upload.method, upload.path) == ("PUT", "/api/v1/printers/p-1/jobs/7/snapshot")
    assert upload.headers["Authorization"] == "Bearer cfp_printer-token"
    assert upload.headers["Content-Type"] == "image/jpeg" and upload.body == JPEG


@pytest.mark.parametrize(
    ("webcam_reply", "fleet_reply"),
    [
        (Reply(200, b"<html>sign in</html>", "text/html"), Reply(204)),
        (Reply(200, JPEG, "image/jpeg"), Reply(403, b'{"message": "not yours"}', "application/json")),
    ],
    ids=["no-image", "fleet-refuses"],
)
def test_a_bad_photo_or_a_refusal_changes_nothing_of_the_job(
    harness: Harness, webcam_reply: Reply, fleet_reply: Reply
) -> None:
    with serving(lambda r: webcam_reply) as webcam, serving(lambda r: fleet_reply) as fleet_url:
        plate = PlateReporter(Webcam(webcam), FleetClient(fleet_url, "t"), "p-1")
        harness.start(plate=plate)
        harness.send(harness.command(CommandType.DISPATCH, 7))
        harness.node.on_print_done(harness.printer.finish())
        assert not plate.after_job(7)
    assert harness.link.events()[-1].type is EventType.JOB_DONE
    assert harness.node.current_job().phase.value == "done"


def test_a_managers_ask_sends_a_photo_now_and_is_answered(harness: Harness) -> None:
    with webcam_and_fleet() as (webcam, fleet_url, sent):
        harness.start(plate=PlateReporter(Webcam(webcam), FleetClient(fleet_url, "t"), "p-1"))
        harness.send(harness.command(CommandType.SNAPSHOT, 5))
    assert [(a.status, a.reason) for a in harness.link.acks()] == [(AckStatus.DONE, "")]
    assert [r.path for r in sent] == ["/api/v1/printers/p-1/jobs/5/snapshot"]


def test_a_printer_without_a_webcam_declines_the_ask(harness: Harness) -> None:
    harness.start()
    harness.send(harness.command(CommandType.SNAPSHOT, 5))
    assert [(a.status, a.reason) for a in harness.link.acks()] == [
        (AckStatus.DECLINED, "this printer has no webcam")
    ]


def test_a_webcam_behind_a_login_is_asked_as_octoprints_settings_say(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Basic, digest and bearer logins (OctoPrint 1.11's snapshotAuth), and a user:password in the URL
    (any version); the password never shows in a message."""
    seen: list[str] = []
    digest = 'Digest realm="cam", nonce="n0nce", qop="auth", algorithm=MD5'

    def camera(request: Request) -> Reply:
        given = request.headers.get("Authorization") or ""
        seen.append(given.split(" ")[0])
        ok = {
            "/basic": given == "Basic " + base64.b64encode(b"owner:s3cret").decode(),
            "/bearer": given == "Bearer t0ken",
            "/digest": given.startswith('Digest username="owner", realm="cam", nonce="n0nce"'),
        }[request.path]
        if ok:
            return Reply(200, JPEG, "image/jpeg")
        challenge = (("WWW-Authenticate", digest),) if request.path == "/digest" else ()
        return Reply(401, b"", None, challenge)

    with serving(camera) as url:
        basic = WebcamLogin("basic", username="owner", password="s3cret")
        assert Webcam(f"{url}/basic", login=basic).snapshot()[0] == JPEG
        assert Webcam(f"{url}/bearer", login=WebcamLogin("bearer", token="t0ken")).snapshot()[0] == JPEG
        assert Webcam(f"{url}/digest", login=WebcamLogin("digest", "owner", "s3cret")).snapshot()[0] == JPEG
        assert seen[-2:] == ["", "Digest"], "digest answers the webcam's challenge"
        inline = url.replace("http://", "http://owner:s3cret@")
        assert Webcam(f"{inline}/basic").snapshot()[0] == JPEG
        wrong = Webcam(f"{inline.replace('s3cret', 'guess')}/basic")
        assert wrong.shown == f"{url}/basic"
        with pytest.raises(SnapshotError, match="refused the login") as refused:
            wrong.snapshot()
        assert "guess" not in str(refused.value) and f"{url}/basic" in str(refused.value)
        with pytest.raises(SnapshotError, match="HTTP 401"):
            Webcam(f"{url}/basic", login=WebcamLogin("basic", "owner", "nope")).snapshot()
    assert "s3cret" not in repr(basic)
    with pytest.raises(ValueError, match="one of basic, digest, bearer"):
        WebcamLogin("kerberos")


def test_why_the_last_photo_failed_is_kept_for_the_owner_and_cleared_by_the_next_one() -> None:
    """Not only in the log: the Fablab tab shows it (from its key and values, in OctoPrint's language)."""
    allowed = {"login": False}

    def camera(request: Request) -> Reply:
        return Reply(200, JPEG, "image/jpeg") if allowed["login"] else Reply(401)

    with serving(camera) as webcam, serving(lambda r: Reply(204)) as fleet_url:
        reporter = PlateReporter(Webcam(webcam), FleetClient(fleet_url, "cfp_t", retries=0), "mk4")
        try:
            assert reporter.problem is None
            assert reporter.after_job(7) is False
            assert reporter.problem is not None
            assert (reporter.problem.job_id, reporter.problem.key, reporter.problem.params) == (
                7,
                "webcam_login",
                {"status": 401},
            )
            assert "refused the login" in reporter.problem.to_json()["text"]
            allowed["login"] = True
            assert reporter.after_job(8) is True and reporter.problem is None
        finally:
            reporter.close()
