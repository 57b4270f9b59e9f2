"""The fleet client against a scripted HTTP server: what is sent again, with what key, after how long,
and what is never sent twice. The client against the real fleet is in tests/test_cli.py, tests/node and
tests/octoprint/test_queue_file.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fleet.client import FleetClient, FleetRequestError
from fleet.http_protocol import ENROLL, IDEMPOTENCY_KEY, JOBS, JobSubmission
from fleet.protocol import Capabilities
from tests.http_stub import Reply, Request, serving

ANSWER = {
    "printer_id": "p-1",
    "token": "cfp_x",
    "mqtt": {"host": "h", "port": 1883, "username": "p-1", "password": "pw", "tls": False},
}


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Scripted:
    """Answers each request with the next (status, JSON body) of ``script``; records what came."""

    url: str = ""
    script: list[tuple[int, object]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[Scripted]:
    state = Scripted()

    def answer(request: Request) -> Reply:
        state.seen.append(Seen(request.path, dict(request.headers), request.body))
        status, body = state.script.pop(0)
        return Reply(status, json.dumps(body).encode(), "application/json")

    with serving(answer) as url:
        state.url = url
        yield state


def client(server: Scripted, sleeps: list[float], **options: object) -> FleetClient:
    return FleetClient(server.url, "cfm_token", sleep=sleeps.append, timeout=(5, 5), **options)  # type: ignore[arg-type]


@pytest.fixture
def part(tmp_path: Path) -> Path:
    path = tmp_path / "part.gcode"
    path.write_text("G28\nG1 X10 Y10\n")
    return path


def test_a_failed_submission_is_sent_again_with_its_key_after_a_growing_wait(
    server: Scripted, part: Path
) -> None:
    server.script = [(503, {"message": "busy"}), (500, {}), (201, {"jobs": [{"id": 1}]})]
    sleeps: list[float] = []
    retried: list[str] = []
    sent: list[int] = []
    answer = client(server, sleeps, backoff_s=0.25).submit_job(
        part,
        JobSubmission(copies=2, material="PLA"),
        on_bytes=sent.append,
        on_retry=lambda exc: retried.append(exc.message),
    )
    assert answer == {"jobs": [{"id": 1}]}
    assert [s.path for s in server.seen] == [JOBS] * 3
    keys = {s.headers[IDEMPOTENCY_KEY] for s in server.seen}
    assert len(keys) == 1 and keys.pop().startswith('"'), "one quoted key for every try"
    assert sleeps == [0.25, 0.5]
    assert retried == [
        "the fleet answered HTTP 503: busy",
        "the fleet answered HTTP 500: Internal Server Error",
    ]
    assert sum(sent) == 3 * part.stat().st_size, "the file is streamed again on each try"
    body = server.seen[-1].body
    assert b"G28\nG1 X10 Y10\n" in body and b'name="copies"\r\n\r\n2' in body and b"PLA" in body
    assert server.seen[-1].headers["Authorization"] == "Bearer cfm_token"


def test_the_wait_between_tries_is_capped_and_the_last_failure_is_raised(
    server: Scripted, part: Path
) -> None:
    server.script = [(503, {"message": "busy"})] * 6
    sleeps: list[float] = []
    with pytest.raises(FleetRequestError) as failed:
        client(server, sleeps, retries=5, backoff_s=1.0, max_backoff_s=3.0).submit_job(part, JobSubmission())
    assert sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]
    assert len(server.seen) == 6 and failed.value.status is None


def test_a_refusal_is_never_sent_again(server: Scripted, part: Path) -> None:
    server.script = [(422, {"message": "copies must be 1 to 10"})]
    sleeps: list[float] = []
    with pytest.raises(FleetRequestError) as refused:
        client(server, sleeps).submit_job(part, JobSubmission(copies=99))
    assert refused.value.status == 422 and "copies must be 1 to 10" in refused.value.message
    assert len(server.seen) == 1 and sleeps == []


def test_a_given_key_is_the_one_sent(server: Scripted, part: Path) -> None:
    server.script = [(201, {"jobs": []})]
    client(server, []).submit_job(part, JobSubmission(), key="mine-1")
    assert server.seen[0].headers[IDEMPOTENCY_KEY] == '"mine-1"'


def test_enrolling_is_sent_once_even_when_the_fleet_fails(server: Scripted) -> None:
    """The first request that reaches the fleet spends the code: sending it again could only fail."""
    server.script = [(503, {"message": "no broker"})]
    with pytest.raises(FleetRequestError, match="no broker") as failed:
        client(server, []).enroll("CODE", "Mini", Capabilities(material="PLA"))
    assert len(server.seen) == 1 and failed.value.status is None
    assert json.loads(server.seen[0].body) == {
        "code": "CODE",
        "name": "Mini",
        "capabilities": {"material": "PLA"},
    }


def test_enrolling_reads_the_answer_strictly(server: Scripted) -> None:
    server.script = [(201, ANSWER), (201, {**ANSWER, "printer_id": "Not An Id"})]
    answer = client(server, []).enroll("CODE", "Mini", Capabilities())
    assert answer.printer_id == "p-1" and answer.mqtt.password == "pw"
    assert server.seen[0].path == ENROLL
    with pytest.raises(FleetRequestError, match="printer_id"):
        client(server, []).enroll("CODE", "Mini", Capabilities())


def test_unreachable_and_misspelt_fleets() -> None:
    with pytest.raises(FleetRequestError, match="must start with http"):
        FleetClient("fleet.lab:8080")
    sleeps: list[float] = []
    lost = FleetClient("http://127.0.0.1:1", sleep=sleeps.append, timeout=(2, 2), retries=1)
    with pytest.raises(FleetRequestError, match="could not reach the fleet") as failed:
        lost.request_json("get", JOBS)
    assert failed.value.status is None and sleeps == [], "a plain call is not retried"


def test_capabilities_a_fleet_would_refuse_are_not_sent(server: Scripted) -> None:
    from fleet.node.enroll import enroll

    with pytest.raises(FleetRequestError, match=r"capabilities\.material") as refused:
        enroll(server.url, "CODE", "Mini", {"material": 5})
    assert refused.value.status == 422 and server.seen == []  # a refusal: trying again cannot help
