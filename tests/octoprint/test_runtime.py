"""The plugin's runtime against a real HTTP server standing in for the fleet's enrollment endpoint: a
refusal is asked once and explained, an unreachable fleet is tried again less and less often."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet.client import FleetClient
from fleet.node import PlateReporter, Webcam
from fleet.node.plate import PlateProblem
from octoprint_crowdfab.enroll import BrokerAddress
from octoprint_crowdfab.runtime import LinkState, PluginConfig, Problem, Runtime
from octoprint_crowdfab.update import update_information
from tests.brokers import free_port
from tests.http_stub import Reply, Request, serving
from tests.octoprint_server import wait_for


class Fleet:
    """Answers every enrollment with ``status`` and ``message``; keeps the bodies sent."""

    def __init__(self) -> None:
        self.status = 401
        self.message = "this enrollment code is not known"
        self.details: Any = None
        self.bodies: list[dict[str, Any]] = []
        self.url = ""

    def answer(self, request: Request) -> Reply:
        self.bodies.append(json.loads(request.body))
        body = {"message": self.message, **({} if self.details is None else {"details": self.details})}
        return Reply(self.status, json.dumps(body).encode(), "application/json")


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    running = Fleet()
    with serving(running.answer) as url:
        running.url = url
        yield running


def runtime_for(url: str, tmp_path: Path, **kw: Any) -> Runtime:
    profile = {"volume": {"width": 220, "depth": 220, "height": 250, "origin": "lowerleft"}}
    config = PluginConfig(fleet_url=url, enroll_code="ABCD-EFGH", material="PLA", profile=profile)

    def never(_: Any) -> None:
        raise AssertionError("a refused enrollment must not be saved")

    return Runtime(config, None, tmp_path, never, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "details", "problem"),
    [
        (401, None, Problem.CODE),  # an older fleet: it does not say why
        (401, {"reason": "unknown"}, Problem.CODE),
        (401, {"reason": "used"}, Problem.CODE_USED),
        (401, {"reason": "expired"}, Problem.CODE_EXPIRED),
        (409, None, Problem.NAME),
        (422, None, Problem.REFUSED),
        (403, None, Problem.REFUSED),
    ],
)
def test_a_refusal_is_asked_once_and_explained(
    fleet: Fleet, tmp_path: Path, status: int, details: Any, problem: Problem
) -> None:
    fleet.status, fleet.details = status, details
    runtime = runtime_for(fleet.url, tmp_path, retry_s=0.05)
    runtime.start()
    try:
        wait_for(lambda: runtime.state is LinkState.REFUSED, 10, "the runtime to give up")
        report = runtime.status()
        assert report["link"] == "refused" and report["problem"] == problem.value
        assert fleet.message in report["error"], "the fleet's own words are shown"
        assert report["next_try_at"] is None
        # Nothing is left to try again later: still the one request.
        wait_for(lambda: not runtime.working, 5, "the runtime's thread to end")
        assert len(fleet.bodies) == 1
    finally:
        runtime.close()
    # The profile's volume went with the request, as the fleet's enrollment takes it.
    caps = fleet.bodies[0]["capabilities"]
    assert caps == {
        "volume": {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 220, "max_y": 220, "max_z": 250},
        "nozzle_diameter": 0.4,
        "material": "PLA",
    }


def test_an_unreachable_fleet_is_tried_less_and_less_often(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    runtime = runtime_for(url, tmp_path, retry_s=0.2, retry_max_s=0.8)
    runtime.start()
    try:
        wait_for(lambda: runtime.state is LinkState.UNREACHABLE, 10, "the first failed try")
        report = runtime.status()
        assert report["problem"] == "unreachable" and report["fleet_url"] == url
        assert report["next_try_at"] is not None
        assert "could not reach the fleet" in report["error"]
        # Waits of 0.2, 0.4, 0.8, 0.8 s: four more tries take at least 2.2 s.
        wait_for(lambda: runtime.attempts >= 5, 10, "five tries")
    finally:
        runtime.close()
    assert runtime.attempts <= 6


def test_a_fleet_failing_with_a_server_error_counts_as_unreachable(fleet: Fleet, tmp_path: Path) -> None:
    fleet.status = 503
    runtime = runtime_for(fleet.url, tmp_path, retry_s=30)
    runtime.start()
    try:
        wait_for(lambda: runtime.state is LinkState.UNREACHABLE, 10, "the failed try")
        assert runtime.status()["problem"] == "unreachable"
    finally:
        runtime.close()


def test_nothing_to_try_says_not_set_up(tmp_path: Path) -> None:
    runtime = Runtime(PluginConfig(), None, tmp_path, lambda _: None)  # type: ignore[arg-type]
    runtime.start()
    assert runtime.status()["link"] == "not enrolled"
    assert runtime.status()["problem"] == "not_set_up"


def test_the_software_update_entry() -> None:
    entry = update_information({}, "0.1.0")["crowdfab"]
    assert entry["type"] == "github_release" and entry["current"] == "0.1.0"
    assert entry["pip"].endswith("/archive/{target_version}.zip")
    own = update_information({"check": "jsondata", "jsondata": "https://fab.example/v.json"}, "0.1.0")
    assert own["crowdfab"]["type"] == "jsondata"
    assert own["crowdfab"]["jsondata"] == "https://fab.example/v.json"
    assert update_information({"check": "none"}, "0.1.0") == {}
    assert update_information({"check": "jsondata"}, "0.1.0") == {}, "no URL: no broken entry"
    assert update_information({"repository": "nobody"}, "0.1.0") == {}


class LinkedNode:
    """A node whose link comes up as soon as it starts (the runtime's part is what is tested)."""

    def __init__(self, on_link_change: Any, plate: Any = None) -> None:
        self.on_link_change = on_link_change
        self.plate = plate

    def start(self) -> None:
        self.on_link_change(True)

    def close(self, timeout: float = 5.0) -> None:
        del timeout

    def pending_offer(self) -> None:
        return None

    def current_job(self) -> None:
        return None


def test_a_joined_runtime_reports_the_jobs_its_profile_cannot_take(tmp_path: Path) -> None:
    reason = "240\u00d7150\u00d70.8 mm needed, this profile gives 200\u00d7200\u00d7200 mm"
    # The key and values the Fablab tab words the reason from, in its user's language.
    worded = {
        "key": "too_small",
        "params": {"needed": "240\u00d7150\u00d70.8 mm", "have": "200\u00d7200\u00d7200 mm"},
    }
    answers = [
        Reply(
            200,
            json.dumps({"jobs": [{"job_id": 7, "reason": reason, **worded}]}).encode(),
            "application/json",
        )
    ]
    asked: list[tuple[str, str]] = []

    def fleet(request: Request) -> Reply:
        asked.append((request.path, request.headers.get("Authorization") or ""))
        return answers[-1]

    with serving(fleet) as url:
        config = PluginConfig(
            fleet_url=url,
            printer_id="garage",
            printer_token="cfp_secret",
            mqtt=BrokerAddress("fleet.lab", 1883),
            unfit_check_s=0.2,
        )
        runtime = Runtime(
            config,
            None,  # type: ignore[arg-type]
            tmp_path,
            lambda _: None,
            node_factory=lambda c, p, j, up: LinkedNode(up),  # type: ignore[arg-type,return-value]
        )
        assert runtime.status()["unfit"] == []
        runtime.start()
        try:
            wait_for(lambda: runtime.status()["unfit"], 10, "the runtime to ask the fleet")
            assert runtime.status()["unfit"] == [{"job_id": 7, "reason": reason, **worded}]
            assert asked[0] == ("/api/v1/printers/garage/unfit", "Bearer cfp_secret")
            # A refusal keeps what the last answer said; an empty answer clears it.
            answers.append(Reply(403, b'{"message": "no"}', "application/json"))
            seen = len(asked)
            wait_for(lambda: len(asked) > seen, 10, "the runtime to ask again")
            assert runtime.status()["unfit"] == [{"job_id": 7, "reason": reason, **worded}]
            answers.append(Reply(200, b'{"jobs": []}', "application/json"))
            wait_for(lambda: runtime.status()["unfit"] == [], 10, "the runtime to hear the queue is clear")
        finally:
            runtime.close()


def test_the_status_says_why_the_last_photo_of_the_plate_failed(tmp_path: Path) -> None:
    reporter = PlateReporter(Webcam("http://127.0.0.1:9/snap"), FleetClient("http://127.0.0.1:9"), "garage")
    reporter.problem = PlateProblem(7, "the webcam at ... refused the login", "webcam_login", {"status": 401})
    config = PluginConfig(
        fleet_url="http://fleet", printer_id="garage", printer_token="t", mqtt=BrokerAddress("h", 1)
    )
    runtime = Runtime(
        config,
        None,  # type: ignore[arg-type]
        tmp_path,
        lambda _: None,
        node_factory=lambda c, p, j, up: LinkedNode(up, reporter),  # type: ignore[arg-type,return-value]
    )
    assert runtime.status()["plate_problem"] is None, "no node yet"
    runtime.start()
    try:
        wait_for(lambda: runtime.status()["link"] == "online", 10, "the runtime to join")
        assert runtime.status()["plate_problem"] == {
            "job_id": 7,
            "text": "the webcam at ... refused the login",
            "key": "webcam_login",
            "params": {"status": 401},
        }
    finally:
        runtime.close()
        reporter.close()
