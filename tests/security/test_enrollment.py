"""Enrollment codes and revocation, end to end: the fleet as ``serve`` runs it, its managed Mosquitto,
and printers that enroll through the node's own client.

A code enrolls one printer, once, even when several enrollments race with it; it stops working when it
expires; and a revoked printer is shut out everywhere: its HTTP token, its broker login, and the
connection it already has open, which the broker closes within a bounded time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Union

import pytest

from fleet.app.enrollment import ENROLLMENT_CODE_REFUSALS
from fleet.models import CodeRefusal
from fleet.node.enroll import EnrollmentAnswer, FleetRequestError
from fleet.protocol import Channel, NodeState, Status, encode_status, topic

from ..brokers import wait_until
from ._broker_setup import BAD_LOGIN, NOT_AUTHORIZED, LiveFleet, Outsider, login

USED = ENROLLMENT_CODE_REFUSALS[CodeRefusal.USED]

#: How long the broker may take to close a revoked printer's open connection. Measured here: well
#: under a second (SIGHUP, then Mosquitto's next pass over its clients); the bound allows a loaded machine.
REVOKED_CONNECTION_CLOSED_WITHIN_S = 5.0
REFUSED = (NOT_AUTHORIZED, BAD_LOGIN)


@pytest.fixture
def live_fleet(tmp_path: Path) -> Iterator[LiveFleet]:
    fleet = LiveFleet(tmp_path / "fleet")
    yield fleet
    fleet.close()


def refusal(call: object) -> FleetRequestError:
    with pytest.raises(FleetRequestError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_a_code_enrolls_one_printer_once(live_fleet: LiveFleet) -> None:
    code = live_fleet.new_code()
    first = live_fleet.enroll("Lab MK4", code.lower())  # as typed by hand: the same code
    assert first.printer_id == "lab-mk4" and first.mqtt.username == "lab-mk4"
    for spelling in (code, code.lower()):
        again = refusal(lambda spelling=spelling: live_fleet.enroll("Second printer", spelling))
        assert again.status == 401 and USED in str(again) and again.details == {"reason": "used"}
    printers = live_fleet.api("GET", "/printers").json()["printers"]
    assert [p["id"] for p in printers] == ["lab-mk4"]
    assert live_fleet.broker_users() == [live_fleet.fleet_login()[0], "lab-mk4"]


def race(live_fleet: LiveFleet, code: str, racers: int) -> list[Union[EnrollmentAnswer, FleetRequestError]]:
    """``racers`` threads released at one instant, each enrolling a printer with ``code``."""
    start = threading.Barrier(racers)
    results: list[Union[EnrollmentAnswer, FleetRequestError]] = []
    lock = threading.Lock()

    def enroll(n: int) -> None:
        start.wait()
        try:
            outcome: Union[EnrollmentAnswer, FleetRequestError] = live_fleet.enroll(f"racer {n}", code)
        except FleetRequestError as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=enroll, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_racing_enrollments_with_one_code_make_one_printer(live_fleet: LiveFleet) -> None:
    racers, rounds = 3, 3  # 6 refused attempts: under the 10 an address may fail before a 429
    for round_no in range(rounds):
        results = race(live_fleet, live_fleet.new_code(), racers)
        winners = [r for r in results if isinstance(r, EnrollmentAnswer)]
        losers = [r for r in results if isinstance(r, FleetRequestError)]
        assert len(results) == racers and len(winners) == 1, f"round {round_no}: {results}"
        assert all(r.status == 401 and USED in str(r) for r in losers)
    printers = live_fleet.api("GET", "/printers").json()["printers"]
    assert len(printers) == rounds
    assert sorted(live_fleet.broker_users()[1:]) == sorted(p["id"] for p in printers)


def test_printers_enrolling_at_once_can_all_log_in(live_fleet: LiveFleet) -> None:
    """Each enrollment rewrites the broker's password file from its own request thread: concurrent
    rewrites must neither lose a printer nor leave a half-written file behind."""
    codes = [live_fleet.new_code() for _ in range(6)]
    start = threading.Barrier(len(codes))
    enrolled: dict[int, EnrollmentAnswer] = {}

    def join(n: int) -> None:
        start.wait()
        enrolled[n] = live_fleet.enroll(f"crowd {n}", codes[n])

    threads = [threading.Thread(target=join, args=(n,)) for n in range(len(codes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(enrolled) == list(range(len(codes)))
    for e in enrolled.values():
        # The broker re-reads its files on SIGHUP, a moment after the answer: wait for the login.
        wait_until(
            lambda e=e: login(live_fleet.mqtt_port, e.mqtt.username, e.mqtt.password) == 0,
            10,
            f"{e.printer_id} to log in",
        )
    assert sorted(live_fleet.broker_users()[1:]) == sorted(e.printer_id for e in enrolled.values())


def test_a_code_expires(live_fleet: LiveFleet) -> None:
    too_short = live_fleet.api("POST", "/enroll-codes", json={"ttl_s": 59})
    assert too_short.status_code == 422 and too_short.json()["field"] == "ttl_s"
    service = live_fleet.service
    now = time.time()
    service.clock = lambda: now
    try:
        kept, lapsed = live_fleet.new_code(ttl_s=60), live_fleet.new_code(ttl_s=60)
        service.clock = lambda: now + 59.9
        assert live_fleet.enroll("In time", kept).printer_id == "in-time"
        service.clock = lambda: now + 60.0  # expired from that instant on
        late = refusal(lambda: live_fleet.enroll("Too late", lapsed))
        assert late.status == 401 and late.details == {"reason": "expired"}
        assert ENROLLMENT_CODE_REFUSALS[CodeRefusal.EXPIRED] in str(late)
    finally:
        service.clock = time.time
    assert [p["id"] for p in live_fleet.api("GET", "/printers").json()["printers"]] == ["in-time"]


def test_a_revoked_printer_is_shut_out_and_its_open_connection_closed(live_fleet: LiveFleet) -> None:
    revoked = live_fleet.enroll("Revoked")
    kept = live_fleet.enroll("Kept")
    file_of_job = f"/printers/{revoked.printer_id}/jobs/1/file"
    # Before: its token is a printer's (the job is unknown, but the token is accepted) ...
    before = live_fleet.api("GET", file_of_job, token=revoked.token)
    assert before.status_code == 404, before.text
    # ... and its node is connected, as is another printer's.
    node = Outsider(live_fleet.mqtt_port, revoked.mqtt.username, revoked.mqtt.password, reconnect=True)
    other = Outsider(live_fleet.mqtt_port, kept.mqtt.username, kept.mqtt.password)
    try:
        assert node.connect() == 0 and other.connect() == 0
        assert node.subscribe(topic(revoked.printer_id, Channel.CMD)) == 1

        answer = live_fleet.api("POST", f"/printers/{revoked.printer_id}/revoke")
        revoked_at = time.monotonic()
        assert answer.status_code == 200 and answer.json()["state"] == "maintenance"

        # The broker closes the connection the printer already had, and refuses it coming back.
        closed_at = node.wait_disconnected(REVOKED_CONNECTION_CLOSED_WITHIN_S + 5)
        assert closed_at - revoked_at <= REVOKED_CONNECTION_CLOSED_WITHIN_S
        wait_until(lambda: len(node.connacks) >= 2, 10, "the revoked node's reconnect to be answered")
        assert all(code in REFUSED for code in node.connacks[1:])
        assert login(live_fleet.mqtt_port, revoked.mqtt.username, revoked.mqtt.password) in REFUSED
        # Its HTTP token is refused too.
        after = live_fleet.api("GET", file_of_job, token=revoked.token)
        assert after.status_code == 401 and "revoked" in after.json()["message"]
        assert revoked.printer_id not in live_fleet.broker_users()

        # Revocation is of that printer alone: the other one stays connected and is heard.
        kept_status = encode_status(Status(state=NodeState.IDLE, ts=time.time(), message="still here"))
        assert other.publish(topic(kept.printer_id, Channel.STATUS), kept_status) == 0
        wait_until(
            lambda: live_fleet.service.reports.live(kept.printer_id) is not None,
            10,
            "the kept printer's status",
        )
        assert other.disconnects == []
        assert (
            live_fleet.api("GET", f"/printers/{kept.printer_id}/jobs/1/file", token=kept.token).status_code
            == 404
        )
        print(f"revoked connection closed {1000 * (closed_at - revoked_at):.0f} ms after the revoke answer")
    finally:
        node.close()
        other.close()
