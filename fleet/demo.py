"""``make demo``: a whole lab on one machine: the fleet, four simulated printers, members and a queue.

The fleet runs in this process with its own Mosquitto on a free port and SQLite in a scratch data dir.
Each printer is a real agent (serial streamer, node, MQTT) on a simulated firmware behind a pty, sped
up so the sample jobs finish in a minute or two. The demo also plays the lab's people: someone clears
a finished plate after a few seconds, and a manager approves a job that waits for approval.

A living lab: three weeks of history are recorded first (prints done, failed and cancelled, with
real-looking times, materials and waits), so the statistics show something; then members keep
submitting at a lab's pace compressed by ``--speedup``, and the :data:`SCENARIO` plays what makes the
queue explain itself in the first minutes (one member's batch, a material nobody loaded, a part too
big for every printer, a printer in maintenance). New features add their own steps there.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import random
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
from .errors import Conflict
from .gcode.analysis import analyze_stream
from .gcode.generate import generate_box
from .geometry import Box
from .http_protocol import API_PREFIX, OPENAPI, QUEUE
from .models import Member, PastJob, PrinterChanges, Role
from .protocol import Capabilities
from .serial.simulator import SimulatedFirmware, SimulatorOptions
from .server import FleetRuntime, LinkOptions
from .states import TERMINAL, JobState, PrinterState
from .store.blobs import BlobInfo

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


# -- the lab's parts and habits -----------------------------------------------------------------------

DAY_S = 86400.0


@dataclass(frozen=True)
class Part:
    """A part members print. A small generated box stands in for its G-code; ``minutes`` and ``grams``
    are what such a part really takes (the history records them; a live job prints the box, sped up)."""

    filename: str
    minutes: float
    grams: float
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def material(self) -> str:
        return str(self.options.get("material", "PLA"))

    @property
    def nozzle(self) -> float:
        return float(self.options.get("nozzle", 0.4))


PARTS = (
    Part("keychain.gcode", 25, 4, {"width": 30, "depth": 12, "height": 1.2}),
    Part("cable-clip.gcode", 15, 2, {"width": 20, "depth": 10, "height": 1.0}),
    Part("phone-stand.gcode", 150, 45, {"width": 70, "depth": 60, "height": 1.6}),
    Part("gear.gcode", 50, 9, {"width": 25, "depth": 25, "height": 2, "arcs": True}),
    Part("vase.gcode", 210, 60, {"width": 80, "depth": 80, "height": 2}),
    Part("bracket.gcode", 100, 22, {"width": 40, "depth": 20, "height": 2, "material": "PETG"}),
    Part("enclosure-lid.gcode", 380, 140, {"width": 200, "depth": 150, "height": 1.2, "nozzle": 0.6}),
)

#: Submissions per weekday each member makes, on average (a weekend day sees a third of it).
HABITS = {"ada": 1.0, "alice": 2.5, "bob": 5.0, "chloe": 1.5}
#: How often a print fails, and how often its member cancels it.
FAILURE_RATE = 0.08
CANCEL_RATE = 0.03
#: Days of history recorded before the lab opens.
HISTORY_DAYS = 21


def can_print(part: Part, printer: DemoPrinter, member: str) -> bool:
    """The demo's own rule of thumb (material, nozzle, who may use it); the scheduler decides live."""
    granted = printer.name in GRANTS.get(member, ())
    return (
        part.material.casefold() == printer.material.casefold()
        and abs(part.nozzle - printer.nozzle) < 0.01
        and (not printer.restricted or granted)
    )


def poisson(rng: random.Random, mean: float) -> int:
    """How many events happen when ``mean`` are expected (Knuth's method: fine for small means)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def store_part(service: FleetApp, part: Part) -> tuple[BlobInfo, dict[str, Any]]:
    """The part's stand-in G-code, stored, and its analysis with the part's real time and weight."""
    text = generate_box(origin=(20.0, 20.0), **part.options).encode()
    blob = service.blobs.put_stream(io.BytesIO(text), max_bytes=len(text))
    analysis = analyze_stream(io.BytesIO(text)).to_dict()
    analysis.update(estimated_time_s=part.minutes * 60, filament_weight_g=part.grams)
    return blob, analysis


def seed_history(
    service: FleetApp,
    people: dict[str, tuple[Member, str]],
    *,
    now: float,
    rng: random.Random,
    days: int = HISTORY_DAYS,
) -> int:
    """Record ``days`` of past prints on the demo printers, as a lab would have made them; returns how many.

    Members come in the day (09:00 to 20:00 UTC), each at their own rate; a print starts when a
    printer that can take it is free and its plate has been cleared, so the waits are a real queue's.
    """
    stored = {part.filename: store_part(service, part) for part in PARTS}
    today = now - now % DAY_S
    arrivals = []
    for back in range(days, 0, -1):
        midnight = today - back * DAY_S
        weekend = time.gmtime(midnight).tm_wday >= 5
        for name, rate in HABITS.items():
            for _ in range(poisson(rng, rate / 3 if weekend else rate)):
                arrivals.append((midnight + rng.uniform(9, 20) * 3600, name))
    arrivals.sort()
    free = {spec.id: today - (days + 1) * DAY_S for spec in PRINTERS}
    past: list[PastJob] = []
    for submitted, name in arrivals:
        choices = [(part, [p for p in PRINTERS if can_print(part, p, name)]) for part in PARTS]
        part, fitting = rng.choice([(part, fit) for part, fit in choices if fit])
        printer = min(fitting, key=lambda p: free[p.id])
        start = max(submitted + rng.uniform(60, 600), free[printer.id])
        length = part.minutes * 60 * rng.uniform(0.9, 1.15)
        roll = rng.random()
        outcome = JobState.FAILED if roll < FAILURE_RATE else JobState.DONE
        if FAILURE_RATE <= roll < FAILURE_RATE + CANCEL_RATE:
            outcome = JobState.CANCELLED
        end = start + (length if outcome is JobState.DONE else length * rng.uniform(0.05, 0.7))
        if end > now - 3600:
            continue  # the history stops before the lab opens
        free[printer.id] = end + rng.uniform(300, 2400)  # until someone clears the plate
        blob, analysis = stored[part.filename]
        past.append(
            PastJob(
                member_id=people[name][0].id,
                printer_id=printer.id,
                outcome=outcome,
                file_sha256=blob.sha256,
                filename=part.filename,
                size_bytes=blob.size,
                material=None,
                analysis={**analysis, "estimated_time_s": round(length)},
                submitted_at=submitted,
                started_at=start,
                finished_at=end,
            )
        )
    return len(service.store.record_past_jobs(past, actor="history"))


# -- the living lab: what happens once it opens ----------------------------------------------------


@dataclass(eq=False)
class Lab:
    """What the scenario's steps act on: the service, the people and the demo's dice."""

    service: FleetApp
    people: dict[str, tuple[Member, str]]
    rng: random.Random

    def member(self, name: str) -> Member:
        return self.people[name][0]

    def submit(
        self,
        name: str,
        part: Part,
        *,
        copies: int = 1,
        material: Optional[str] = None,
        colour: Optional[str] = None,
    ) -> list[int]:
        text = generate_box(origin=(20.0, 20.0), **part.options)
        submission = self.service.intake.submit_job(
            self.member(name),
            io.BytesIO(text.encode()),
            filename=part.filename,
            copies=copies,
            material=material,
            colour=colour,
        )
        return [job.id for job in submission.jobs]


@dataclass(frozen=True)
class Step:
    """Something that happens ``at`` seconds after the lab opens. ``act`` says what it did, for the log,
    or None when it cannot happen yet (it is tried again on the next tick)."""

    at: float
    act: Callable[[Lab], Optional[str]]


def part_named(filename: str) -> Part:
    return next(part for part in PARTS if part.filename == filename)


def one_members_batch(lab: Lab) -> str:
    ids = lab.submit("bob", part_named("cable-clip.gcode"), copies=6)
    return f"bob queued {len(ids)} cable clips at once: the fair share lets the others' jobs in between"


def material_nobody_loaded(lab: Lab) -> str:
    lab.submit(
        "alice", Part("phone-case.gcode", 90, 25, {"width": 75, "depth": 40, "height": 1.2}), material="TPU"
    )
    return "alice asked for TPU, which no printer has loaded"


def part_too_big(lab: Lab) -> str:
    lab.submit("bob", Part("cosplay-shield.gcode", 900, 400, {"width": 320, "depth": 320, "height": 1.0}))
    return "bob sent a 320 mm shield: bigger than every printer"


def maintenance(on: bool) -> Callable[[Lab], Optional[str]]:
    def act(lab: Lab) -> Optional[str]:
        printer = slugify("Prusa MK4")
        if not on and lab.service.store.get_printer(printer).state is not PrinterState.MAINTENANCE:
            return None  # the maintenance has not begun yet (the printer was busy)
        try:
            lab.service.printers.update_printer(lab.member("ada"), printer, PrinterChanges(maintenance=on))
        except Conflict:
            return None  # printing: ada waits for the print to end
        if on:
            lab.submit("alice", part_named("bracket.gcode"))
            return (
                "ada took the Prusa MK4 (the PETG printer) for maintenance; alice's PETG bracket waits for it"
            )
        return "ada finished the Prusa MK4's maintenance"

    return act


#: The lab's public prices (decimal text in the lab's currency; docs/economy.md).
DEMO_PRICES = {
    "per_gram": {"PLA": "0.03", "PETG": "0.045", "TPU": "0.08"},
    "default_per_hour": "0.50",
    "minimum": "0.50",
    "unfinished": "share",
}


def lab_economy(lab: Lab) -> str:
    ada = lab.member("ada")
    quotas = lab.service.quotas
    lab.service.pricing.set_price_list(ada, DEMO_PRICES)
    students = quotas.create_group(ada, "student", 0)
    quotas.set_member_group(ada, lab.member("chloe").id, students.id)
    quotas.set_quota(ada, {"period": "week", "jobs_at_once": 1}, group_id=students.id)
    return "ada published the price list; students (chloe) may have one job at a time in the queue"


#: The spools on the lab's printers when it opens (the large printer's owner tracks none): the Ender's
#: runs low, so a job that needs more than is left waits for the other printers.
SPOOLS = (
    ("Prusa MINI", {"material": "PLA", "colour_name": "white", "colour_hex": "#f4f4f4", "net_grams": 1000}),
    ("Prusa MK4", {"material": "PETG", "colour_name": "black", "colour_hex": "#1a1a1a", "net_grams": 1000}),
    (
        "Ender 3",
        {
            "material": "PLA",
            "colour_name": "grey",
            "colour_hex": "#8a8a8a",
            "net_grams": 1000,
            "remaining_grams": 30,
        },
    ),
)


def spools_loaded(lab: Lab) -> str:
    ada = lab.member("ada")
    for name, values in SPOOLS:
        spool = lab.service.spools.add_spool(ada, {**values, "price_per_kg": 2500})
        lab.service.spools.load(ada, spool.id, slugify(name))
    return "ada loaded the lab's spools; the Ender 3's grey PLA is down to 30 g"


def colour_change(lab: Lab) -> str:
    lab.submit("bob", part_named("keychain.gcode"), material="PLA", colour="red")
    return "bob asked for a red PLA keychain: no printer has red loaded, a colour change is due"


def quota_reached(lab: Lab) -> str:
    ids = lab.submit("chloe", part_named("keychain.gcode"), copies=3)
    for job_id in ids:  # chloe's prints wait for a manager's approval: ada gives it at once
        lab.service.jobs.approve_job(lab.member("ada"), job_id)
    return f"chloe queued {len(ids)} keychains and ada approved them: the student quota holds all but one"


#: What happens in the demo lab, by time after it opens. Features add their steps here, such as a spool
#: running low or a member reaching a quota, each a function of the :class:`Lab` that says what it did.
SCENARIO: list[Step] = [
    Step(1.0, lab_economy),
    Step(1.5, spools_loaded),
    Step(2.0, one_members_batch),
    Step(4.0, material_nobody_loaded),
    Step(6.0, part_too_big),
    Step(8.0, maintenance(True)),
    Step(10.0, quota_reached),
    Step(12.0, colour_change),
    Step(90.0, maintenance(False)),
]


@dataclass(eq=False)
class Arrivals:
    """Members keep coming: one submission every ``mean_s`` seconds on average, by their habits."""

    lab: Lab
    mean_s: float
    clock: Callable[[], float] = time.monotonic
    _next: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._next = self.clock() + self.lab.rng.expovariate(1 / self.mean_s)

    def step(self) -> Optional[str]:
        if self.clock() < self._next:
            return None
        self._next = self.clock() + self.lab.rng.expovariate(1 / self.mean_s)
        rng = self.lab.rng
        name = rng.choices(list(HABITS), weights=list(HABITS.values()))[0]
        part = rng.choice([p for p in PARTS if any(can_print(p, printer, name) for printer in PRINTERS)])
        self.lab.submit(name, part)
        return f"{name} submitted {part.filename}"


def play(lab: Lab, steps: list[Step], elapsed: float) -> list[str]:
    """Run the steps due after ``elapsed`` seconds; those done leave ``steps``. Returns what happened."""
    done = []
    for step in [s for s in steps if s.at <= elapsed]:
        said = step.act(lab)
        if said is not None:
            steps.remove(step)
            done.append(said)
    return done


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
        help="exit when every sample job is done (0), or as soon as one ends otherwise (1); members "
        "submit nothing more and the scenario does not play",
    )
    parser.add_argument("--seed", type=int, default=None, help="the dice of the history and the arrivals")
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
        wait_for_printers(service, timeout_s=30.0)
        rng = random.Random(args.seed)  # noqa: S311 (the demo's dice, not a secret)
        past = seed_history(service, people, now=time.time(), rng=rng)
        job_ids = seed_lab(service, people)
        print(f"CrowdFab demo: dashboard {fleet.url}/  (sign in as any member below)")
        print(f"  fleet API {fleet.url}{API_PREFIX} (document: {fleet.url}{OPENAPI})")
        for name, (member, token) in people.items():
            print(f"  {member.role.value:<7} {name:<6} password {demo_password(name):<18} token {token}")
        print(f'Try: curl -H "Authorization: Bearer {people["bob"][1]}" {fleet.url}{QUEUE}')
        print(f"{past} past prints recorded over {HISTORY_DAYS} days: statistics at {fleet.url}/stats")
        print(
            f"{len(job_ids)} sample jobs queued on {len(agents)} simulated printers. Ctrl-C stops the demo.\n"
        )
        code = run_lab(Lab(service, people, rng), manager, job_ids, stop, args)
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


def wait_for_printers(service: FleetApp, timeout_s: float) -> None:
    """Until every demo printer has enrolled (the history is recorded on them)."""
    wanted = {spec.id for spec in PRINTERS}
    deadline = time.monotonic() + timeout_s
    while not wanted <= {p.id for p in service.printers.list_printers()}:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the demo printers did not enroll within {timeout_s:g} s")
        time.sleep(0.05)


def run_lab(
    lab: Lab,
    manager: Member,
    job_ids: list[int],
    stop: threading.Event,
    args: argparse.Namespace,
) -> int:
    """Show the printers and play the people until stopped (or, with --until-done, until the jobs end)."""
    service = lab.service
    people = LabPeople(service, manager, clear_after_s=args.clear_after)
    board = StatusBoard(sys.stdout)
    opened = time.monotonic()
    deadline = opened + args.timeout
    steps = [] if args.until_done else list(SCENARIO)
    # A lab's member comes every half hour or so: as often, sped up as the printers are.
    arrivals = None if args.until_done else Arrivals(lab, mean_s=1800.0 / args.speedup)
    while not stop.wait(0.5):
        for action in people.step():
            board.note(action)
        for said in play(lab, steps, time.monotonic() - opened):
            board.note(said)
        arrived = arrivals.step() if arrivals is not None else None
        if arrived is not None:
            board.note(arrived)
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
