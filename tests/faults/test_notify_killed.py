"""Notifications survive a SIGKILL: a member told by mail and by a json:// post, and a manager's signed
webhook, each hear "started", "done" and "clear the plate" exactly once, in the member's language, when
the fleet is killed after the job is done and before those two went out (they wait for the plate photo).

A real ``crowdfab-fleet serve`` with its managed broker, one printer running the real node code, a real
SMTP server (aiosmtpd) and a real HTTP receiver that checks each webhook's signature.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import requests

from fleet.gcode.generate import generate_box
from fleet.models import Role
from tests.brokers import wait_until
from tests.notify.receivers import http_receiver, smtp_inbox

from .conftest import FleetProcess, InstantPrinter, enroll_printers, prepare_data_dir

ALICE = "alice@lab.test"
KINDS = ["job_started", "job_done", "bed_clear"]
STARTED, DONE, CLEAR = "Votre impression a commencé", "Votre impression est terminée", "Libérez le plateau"
#: How long "done" and "clear the plate" wait for a photo: the window the fleet is killed in.
PHOTO_WAIT_S = 5


class HeldPrinter(InstantPrinter):
    """Prints until the test lets the print end (:meth:`finish`)."""

    def __init__(self, storage: Path) -> None:
        super().__init__(storage)
        self.started = threading.Event()
        self.file = ""

    def start(self, path: Path) -> None:
        self.starts.append(int(path.name.split("-", 1)[0]))
        self.file = path.name
        self.started.set()

    def finish(self) -> None:
        assert self.node is not None
        self.node.on_print_done(self.file)


def test_a_fleet_killed_between_done_and_delivery_tells_each_channel_exactly_once_after_restart(
    tmp_path: Path, make_fleet: Callable[..., FleetProcess]
) -> None:
    data_dir = tmp_path / "fleet"
    tokens = prepare_data_dir(data_dir, {"ada": Role.MANAGER, "alice": Role.MEMBER})
    fleet = make_fleet(data_dir, extra_args=("--notify-photo-wait", str(PHOTO_WAIT_S)))
    with smtp_inbox() as inbox, http_receiver() as posts:
        fleet.start()
        alice, ada = tokens["alice"], tokens["ada"]
        assert fleet.api(alice, "PUT", "/notifications/language", json={"language": "fr"}).ok
        host = posts.base.removeprefix("http://")
        for label, url in (("mail", inbox.url(ALICE)), ("json", f"json://{host}/member")):
            made = fleet.api(
                alice, "POST", "/notifications/channels", json={"label": label, "url": url, "kinds": KINDS}
            )
            assert made.status_code == 201, made.text
        hook = fleet.api(ada, "POST", "/webhooks", json={"url": f"{posts.base}/hook", "kinds": KINDS}).json()
        posts.secrets["/hook"] = hook["secret"]
        (sim,) = enroll_printers(fleet, 1, tmp_path / "printers", HeldPrinter)
        printer = sim.printer
        assert isinstance(printer, HeldPrinter)
        try:
            submitted = fleet.api(
                alice, "POST", "/jobs", files={"file": ("cube.gcode", generate_box(8, 8, 0.4).encode())}
            )
            job_id = submitted.json()["jobs"][0]["id"]
            wait_until(printer.started.is_set, 30, "the printer to start the job")
            # Every "started" delivered before the print ends: the kill must not land in the middle of one.
            wait_until(lambda: STARTED in inbox.subjects(ALICE), 30, "the 'started' mail")
            wait_until(lambda: posts.bodies("/member") and posts.bodies("/hook"), 30, "the 'started' posts")

            printer.finish()
            wait_until(
                lambda: job_state(fleet, alice, job_id) == "done", 15, "the job to be done", interval=0.01
            )
            fleet.kill()
            assert inbox.subjects(ALICE) == [STARTED]  # "done" and "clear the plate" had not gone yet

            fleet.start()
            wait_until(lambda: len(inbox.subjects(ALICE)) == 3, 60, "the 'done' and 'clear the plate' mails")
            wait_until(
                lambda: len(posts.bodies("/member")) == 3 and len(posts.bodies("/hook")) == 3, 3, "posts"
            )
            print([(p, b.get("title") or b.get("kind")) for p, b, _ in posts.accepted], posts.refused)
            print(fleet.log_tail(6000))
            fleet.stop()  # nothing left to send: every delivery is recorded as sent
        finally:
            sim.node.close(2)
    assert Counter(inbox.subjects(ALICE)) == Counter([STARTED, DONE, CLEAR])
    assert Counter(b["title"] for b in posts.bodies("/member")) == Counter([STARTED, DONE, CLEAR])
    hooks = posts.bodies("/hook")
    assert Counter(b["kind"] for b in hooks) == Counter(KINDS) and posts.refused == []
    assert {b["data"]["job_id"] for b in hooks} == {job_id}
    db = sqlite3.connect(data_dir / "fleet.db")
    try:
        states = Counter(state for (state,) in db.execute("SELECT state FROM outbox"))
    finally:
        db.close()
    assert states == Counter({"sent": 9})


def job_state(fleet: FleetProcess, token: str, job_id: int) -> str:
    try:
        return str(fleet.api(token, "GET", f"/jobs/{job_id}", timeout=5).json()["state"])
    except (requests.RequestException, ValueError, KeyError):
        return ""
