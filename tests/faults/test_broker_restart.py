"""The broker stopped and started again while three printers print: each is back within 10 s of the
broker, and every job ends done exactly once.

Real parts: a Mosquitto the test stops and starts (``TestBroker``), ``crowdfab-fleet serve`` on it, and
three ``crowdfab-agent run`` processes on simulated firmwares. One print ends during the outage (its
``job_done`` waits in the node's journal), the other two after it.
"""

from __future__ import annotations

import math
import time

from fleet import protocol as p
from tests.brokers import wait_until
from tests.e2e.agents import SimulatedAgent, slow_part
from tests.e2e.test_fleet_octoprint import RunningFleet, job_state, submit

OUTAGE_S = 20.0
BACK_WITHIN_S = 10.0
#: Print lengths: the first ends inside the outage, the others after it.
PRINT_S = (10.0, 30.0, 30.0)


def printers(fleet: RunningFleet, token: str) -> dict[str, dict]:
    return {pr["id"]: pr for pr in fleet.api(token, "GET", "/printers").json()["printers"]}


def iso_seconds(text: str | None) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp() if text else float("-inf")


def test_every_printer_is_back_within_10_s_of_the_broker_and_every_job_ends_once(tmp_path, mosquitto):
    broker = mosquitto
    fleet = RunningFleet(tmp_path / "fleet", mqtt_url=broker.url)
    agents: list[SimulatedAgent] = []
    try:
        manager = fleet.cli("member", "add", "ada", "--role", "manager")["token"]
        for i in range(3):
            code = fleet.cli("enroll-code")["code"]
            agents.append(SimulatedAgent(tmp_path / f"agent{i}", f"Sim {i}").start(fleet, code))
        wait_until(
            lambda: [pr["state"] for pr in printers(fleet, manager).values()] == ["idle"] * 3,
            60,
            "three idle printers",
            0.2,
        )
        jobs = {
            submit(fleet, manager, slow_part(f"job{i}", s), f"part{i}.gcode"): f"job{i}"
            for i, s in enumerate(PRINT_S)
        }
        wait_until(
            lambda: all(job_state(fleet, manager, j) == "printing" for j in jobs),
            60,
            "all three printing",
            0.2,
        )
        held_by = {pr["current_job_id"]: pid for pid, pr in printers(fleet, manager).items()}
        assert set(held_by) == set(jobs), held_by

        broker.stop()
        stopped = time.monotonic()
        wait_until(lambda: time.monotonic() - stopped >= OUTAGE_S, OUTAGE_S + 5, "the outage to last", 0.5)
        restart_wall = math.floor(time.time())  # the API's times are whole seconds
        broker.start()
        back = time.monotonic()
        watch = broker.sub(f"{p.PRINTERS}/+/status")

        # Back: the node published a status after the broker returned, and the fleet shows the printer
        # reachable with a status it took in after the return.
        returned: dict[str, float] = {}

        def fresh_from_node(printer_id: str) -> bool:
            return any(
                t == p.topic(printer_id, p.Channel.STATUS) and p.decode_status(m).ts >= restart_wall
                for t, m in watch.messages
            )

        def all_back() -> bool:
            for pid, pr in printers(fleet, manager).items():
                if pid in returned:
                    continue
                live = pr.get("live")
                if (
                    pr["state"] != "offline"
                    and live is not None
                    and iso_seconds(live["last_seen"]) >= restart_wall
                    and fresh_from_node(pid)
                ):
                    returned[pid] = time.monotonic() - back
            return len(returned) == 3

        wait_until(all_back, 30, "every printer to be back", 0.1)
        for pid, seconds in sorted(returned.items()):
            print(f"printer {pid} back {seconds:.1f} s after the broker")
        assert max(returned.values()) <= BACK_WITHIN_S, returned

        try:
            wait_until(
                lambda: all(job_state(fleet, manager, j) == "done" for j in jobs),
                90,
                "every job to be done",
                0.2,
            )
        except AssertionError as exc:
            histories = {j: fleet.api(manager, "GET", f"/jobs/{j}").json()["history"] for j in jobs}
            raise AssertionError(
                f"{exc}\nhistories: {histories}\nprinters: {printers(fleet, manager)}\n"
                f"fleet log: {fleet.log_text()}\n" + "\n".join(a.log_text() for a in agents)
            ) from None
        for job_id, tag in jobs.items():
            history = [h["to"] for h in fleet.api(manager, "GET", f"/jobs/{job_id}").json()["history"]]
            assert history.count("done") == 1 and history[-1] == "done", (job_id, history)
            assert "queued" not in history[2:], f"job {job_id} went back to the queue: {history}"
            assert set(history[4:]) <= {"unknown", "printing", "done"}, history
            printed = [a.printed(tag) for a in agents]
            assert sorted(printed) == [0, 0, 1], f"job {job_id} printed {printed} times per printer"
        assert all(pr["state"] == "awaiting_bed_clear" for pr in printers(fleet, manager).values())
    finally:
        for agent in agents:
            agent.stop()
        fleet.stop()
