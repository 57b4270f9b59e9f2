"""``make demo``: a whole lab on one machine: the fleet, four simulated printers, members and a queue.

The fleet runs in this process with its own Mosquitto on a free port and SQLite in a scratch data dir.
Each printer is a real agent (serial streamer, node, MQTT) on a simulated firmware behind a pty, sped
up so the sample jobs finish in a minute or two. The demo also plays the lab's people: someone clears
a finished plate after a few seconds, and a manager approves a job that waits for approval.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
import signal
import sys
import threading
import time
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Optional, TextIO

from .agent import Agent, AgentConfig
from .app import FleetApp
from .app.enrollment import slugify
from .config import FleetConfig
from .gcode.generate import generate_box
from .geometry import Box
from .http_protocol import API_PREFIX, OPENAPI, QUEUE
from .models import Member, PrinterChanges, Role
from .protocol import Capabilities
from .serial.simulator import SimulatedFirmware, SimulatorOptions
from .server import FleetRuntime, LinkOptions
from .states import TERMINAL, JobState, PrinterState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoPrinter:
    name: str
    volume: tuple[float, float, float]
    nozzle: float
    material: str
    #: Only members a manager granted it may print on it.
    restricted: bool = False

    @property
    def id(self) -> str:
        return slugify(self.name)


@dataclass(frozen=True)
class SampleJob:
    member: str
    filename: str
    options: dict[str, Any] = field(default_factory=dict)


PRINTERS = (
    DemoPrinter("Prusa MINI", (180, 180, 180), 0.4, "PLA"),
    DemoPrinter("Prusa MK4", (250, 210, 220), 0.4, "PETG"),
    DemoPrinter("Large format", (300, 300, 400), 0.6, "PLA", restricted=True),
    DemoPrinter("Ender 3", (220, 220, 250), 0.4, "PLA"),
)

#: The manager is ada; chloe's jobs wait for a manager's approval; alice may use the large printer.
MEMBERS = {"ada": Role.MANAGER, "alice": Role.MEMBER, "bob": Role.MEMBER, "chloe": Role.MEMBER}
NEEDS_APPROVAL = {"chloe"}
GRANTS = {"alice": ("Large format",)}

JOBS = (
    SampleJob("bob", "keychain.gcode", {"width": 30, "depth": 12, "height": 1.2}),
    SampleJob("bob", "keychain.gcode", {"width": 30, "depth": 12, "height": 1.2}),
    SampleJob("bob", "coaster.gcode", {"width": 90, "depth": 90, "height": 1.0}),
    SampleJob("alice", "bracket.gcode", {"width": 40, "depth": 20, "height": 2, "material": "PETG"}),
    SampleJob("alice", "enclosure.gcode", {"width": 200, "depth": 150, "height": 1.2, "nozzle": 0.6}),
    SampleJob("chloe", "gear.gcode", {"width": 25, "depth": 25, "height": 2, "arcs": True}),
    SampleJob("bob", "clip.gcode", {"width": 20, "depth": 10, "height": 1.0}),
)


# -- the fleet, in this process ---------------------------------------------------------------------


# -- the lab's people ------------------------------------------------------------------------------


@dataclass(eq=False)
class LabPeople:
    """Plays the people: clears a finished plate ``clear_after_s`` later, approves waiting jobs."""

    service: FleetApp
    manager: Member
    _: KW_ONLY
    clear_after_s: float = 3.0
    approve_after_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _noticed: dict[object, float] = field(default_factory=dict, init=False, repr=False)

    def step(self) -> list[str]:
        """Do what is due now; return what was done, for the log."""
        done = []
        now = self.clock()
        waiting_plates = {
            p.id for p in self.service.printers.list_printers() if p.state is PrinterState.AWAITING_BED_CLEAR
        }
        waiting_jobs = {
            j.id
            for j in self.service.jobs.list_jobs(self.manager, states=frozenset({JobState.AWAITING_APPROVAL}))
        }
        for key in list(self._noticed):
            if key not in waiting_plates and key not in waiting_jobs:
                del self._noticed[key]
        for printer_id in sorted(waiting_plates):
            if now - self._noticed.setdefault(printer_id, now) >= self.clear_after_s:
                self.service.printers.confirm_bed_cleared(self.manager, printer_id)
                done.append(f"{self.manager.name} cleared the bed of {printer_id}")
                break  # one plate at a time, as one person walks from printer to printer
        for job_id in sorted(waiting_jobs):
            if now - self._noticed.setdefault(job_id, now) >= self.approve_after_s:
                self.service.jobs.approve_job(self.manager, job_id)
                done.append(f"{self.manager.name} approved job {job_id}")
        return done


# -- the terminal ------------------------------------------------------------------------------------


class StatusBoard:
    """One line per printer; redrawn in place on a terminal, printed on change otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.live = out.isatty()
        self._drawn = 0
        self._last: dict[str, str] = {}

    def show(self, lines: dict[str, tuple[str, str]]) -> None:
        """``lines``: printer id → (what changed-detection keys on, the full line)."""
        if self.live:
            if self._drawn:
                self.out.write(f"\x1b[{self._drawn}F")
            for _, text in lines.values():
                self.out.write(f"\x1b[K{text}\n")
            self._drawn = len(lines)
        else:
            for printer_id, (key, text) in lines.items():
                if self._last.get(printer_id) != key:
                    self._last[printer_id] = key
                    self.out.write(text + "\n")
        self.out.flush()

    def note(self, message: str) -> None:
        if self.live and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0
        self.out.write(f"  · {message}\n")
        self.out.flush()


def printer_lines(service: FleetApp, manager: Member) -> dict[str, tuple[str, str]]:
    lines = {}
    for printer in service.printers.list_printers():
        live = service.reports.live(printer.id)
        job = service.jobs.get_job(manager, printer.current_job_id) if printer.current_job_id else None
        progress = live.progress if live is not None and live.progress is not None else None
        what = f"job {job.id:>2} {job.filename:<16}" if job else " " * 23
        pct = f"{progress:5.1f}%" if progress is not None and job else ""
        key = f"{printer.state.value}|{job.id if job else ''}"
        lines[printer.id] = (key, f"  {printer.id:<13} {printer.state.value:<19} {what} {pct}".rstrip())
    return lines


# -- setting the lab up ----------------------------------------------------------------------------


def demo_password(name: str) -> str:
    """The demo members' dashboard passwords: printed, never for a real lab."""
    return f"{name}-demo-pass"


def seed_people(service: FleetApp) -> dict[str, tuple[Member, str]]:
    people = {
        name: service.members.add_member(name, role, requires_approval=name in NEEDS_APPROVAL)
        for name, role in MEMBERS.items()
    }
    for member, _ in people.values():
        service.identity.set_password(member, member.id, demo_password(member.name))
    return people


def start_printers(
    fleet: FleetRuntime,
    data_dir: Path,
    speedup: float,
    firmwares: list[SimulatedFirmware],
    agents: list[Agent],
) -> None:
    """A simulated firmware and an agent for each demo printer, enrolled with a fresh code each."""
    for spec in PRINTERS:
        firmware = SimulatedFirmware(SimulatorOptions(speedup=speedup, seed=len(firmwares)))
        firmwares.append(firmware)
        device = firmware.start()
        code, _ = fleet.app.enrollment.create_enrollment_code(None)
        x, y, z = spec.volume
        agent = Agent(
            AgentConfig(
                port=device,
                baud=115200,
                data_dir=data_dir / "agents" / spec.id,
                fleet_url=fleet.url,
                enroll_code=code,
                name=spec.name,
                capabilities=Capabilities(Box(0.0, 0.0, 0.0, x, y, z), spec.nozzle, spec.material),
            )
        )
        agent.start()
        agents.append(agent)


def seed_lab(service: FleetApp, people: dict[str, tuple[Member, str]]) -> list[int]:
    """Restrict the large printer, grant it, and queue the sample jobs; returns their ids."""
    manager = people["ada"][0]
    for spec in PRINTERS:
        if spec.restricted:
            service.printers.update_printer(manager, spec.id, PrinterChanges(restricted=True))
    for who, names in GRANTS.items():
        for name in names:
            service.members.grant(manager, people[who][0].id, slugify(name))
    ids = []
    for sample in JOBS:
        text = generate_box(origin=(20.0, 20.0), **sample.options)
        submission = service.intake.submit_job(
            people[sample.member][0], io.BytesIO(text.encode()), filename=sample.filename
        )
        ids += [job.id for job in submission.jobs]
    return ids


# -- main ------------------------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleet.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="demo-data", help="a scratch data dir, emptied first")
    parser.add_argument("--port", type=int, default=0, help="the API's port (default: a free one)")
    parser.add_argument(
        "--speedup", type=float, default=30.0, help="how much faster the printers run (default 30)"
    )
    parser.add_argument("--clear-after", type=float, default=3.0, help="seconds before a plate is cleared")
    parser.add_argument(
        "--until-done",
        action="store_true",
        help="exit when every sample job is done (0), or as soon as one ends otherwise (1)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds (1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    data_dir = Path(args.data_dir).resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Optional[FrameType]) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    # Short cooldown: a job a printer declined (its plate not yet cleared) is offered to it again soon.
    fleet = FleetRuntime(
        FleetConfig(data_dir=data_dir / "fleet", port=args.port),
        LinkOptions(
            mqtt_port=0, mqtt_public_host="127.0.0.1", dispatch_interval_s=1.0, decline_cooldown_s=2.0
        ),
    )
    firmwares: list[SimulatedFirmware] = []
    agents: list[Agent] = []
    code = 0
    try:
        fleet.start()
        service = fleet.app
        people = seed_people(service)
        manager = people["ada"][0]
        start_printers(fleet, data_dir, args.speedup, firmwares, agents)
        job_ids = seed_lab(service, people)
        print(f"CrowdFab demo: dashboard {fleet.url}/  (sign in as any member below)")
        print(f"  fleet API {fleet.url}{API_PREFIX} (document: {fleet.url}{OPENAPI})")
        for name, (member, token) in people.items():
            print(f"  {member.role.value:<7} {name:<6} password {demo_password(name):<18} token {token}")
        print(f'Try: curl -H "Authorization: Bearer {people["bob"][1]}" {fleet.url}{QUEUE}')
        print(
            f"{len(job_ids)} sample jobs queued on {len(agents)} simulated printers. Ctrl-C stops the demo.\n"
        )
        code = run_lab(service, manager, job_ids, stop, args)
    except KeyboardInterrupt:
        pass
    finally:
        # Stop everything even when the terminal is gone (a closed pipe makes print() raise).
        with contextlib.suppress(OSError):
            print("\nstopping the demo", flush=True)
        for agent in agents:
            agent.close()
        for firmware in firmwares:
            firmware.stop()
        fleet.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def run_lab(
    service: FleetApp,
    manager: Member,
    job_ids: list[int],
    stop: threading.Event,
    args: argparse.Namespace,
) -> int:
    """Show the printers and play the people until stopped (or, with --until-done, until the jobs end)."""
    people = LabPeople(service, manager, clear_after_s=args.clear_after)
    board = StatusBoard(sys.stdout)
    deadline = time.monotonic() + args.timeout
    while not stop.wait(0.5):
        for action in people.step():
            board.note(action)
        board.show(printer_lines(service, manager))
        if not args.until_done:
            continue
        states = {service.jobs.get_job(manager, i).state for i in job_ids}
        if states == {JobState.DONE}:
            board.note(f"all {len(job_ids)} sample jobs are done")
            return 0
        if states & (TERMINAL - {JobState.DONE}):
            board.note(f"a sample job ended {', '.join(sorted(s.value for s in states & TERMINAL))}")
            return 1
        if time.monotonic() > deadline:
            board.note(f"not done after {args.timeout:g} s")
            return 1
    return 130 if args.until_done else 0


if __name__ == "__main__":
    sys.exit(main())
