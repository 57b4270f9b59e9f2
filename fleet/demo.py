"""``make demo``: a fleet on embedded defaults with a lab's worth of members, printers and jobs."""

from __future__ import annotations

import argparse
import io
import shutil
import socket
import sys
from pathlib import Path
from typing import Optional

from .config import FleetConfig
from .gcode.generate import generate_box
from .models import Member, Role
from .server import Fleet, make_server

PRINTERS = [
    {
        "id": "mini-1",
        "name": "Prusa MINI",
        "nozzle_diameter": 0.4,
        "material": "PLA",
        "volume": {"min_x": 0, "min_y": -4, "min_z": 0, "max_x": 180, "max_y": 180, "max_z": 180},
    },
    {
        "id": "mk4-1",
        "name": "Prusa MK4",
        "nozzle_diameter": 0.4,
        "material": "PETG",
        "volume": {"min_x": 0, "min_y": -4, "min_z": 0, "max_x": 250, "max_y": 210, "max_z": 220},
    },
    {
        "id": "big-1",
        "name": "Large format (training required)",
        "nozzle_diameter": 0.6,
        "material": "PLA",
        "restricted": True,
        "volume": {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 300, "max_y": 300, "max_z": 400},
    },
    {
        "id": "ender-1",
        "name": "Ender 3",
        "nozzle_diameter": 0.4,
        "material": "PLA",
        "volume": {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 220, "max_y": 220, "max_z": 250},
    },
]

#: (member, file name, generator options)
JOBS = [
    ("bob", "keychain.gcode", {"width": 30, "depth": 12, "height": 2}),
    ("bob", "keychain.gcode", {"width": 30, "depth": 12, "height": 2}),
    ("bob", "keychain.gcode", {"width": 30, "depth": 12, "height": 2}),
    ("bob", "coaster.gcode", {"width": 90, "depth": 90, "height": 3}),
    ("alice", "bracket.gcode", {"width": 40, "depth": 20, "height": 6, "material": "PETG"}),
    ("alice", "enclosure.gcode", {"width": 200, "depth": 150, "height": 4, "nozzle": 0.6}),
    ("chloe", "gear.gcode", {"width": 25, "depth": 25, "height": 5, "arcs": True}),
    ("bob", "tray.gcode", {"width": 260, "depth": 250, "height": 3}),
]


def free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(fleet: Fleet) -> dict[str, tuple[Member, str]]:
    svc = fleet.service
    people = {
        "ada": svc.add_member("ada", Role.MANAGER),
        "alice": svc.add_member("alice"),
        "bob": svc.add_member("bob"),
        "chloe": svc.add_member("chloe", requires_approval=True),
    }
    manager = people["ada"][0]
    for spec in PRINTERS:
        svc.add_printer(manager, dict(spec))
    svc.grant(manager, people["alice"][0].id, "big-1")
    for who, name, options in JOBS:
        text = generate_box(origin=(20.0, 20.0), **options)  # type: ignore[arg-type]
        svc.submit_job(people[who][0], io.BytesIO(text.encode()), filename=name)
    return people


def show_queue(fleet: Fleet, viewer: Member) -> None:
    print("\nThe queue, as every member sees it:")
    for entry in fleet.service.queue(viewer):
        why = entry.explanation.message if entry.explanation else entry.job.state.value
        print(f"  job {entry.job.id:>2}  {entry.member_name:<6} {entry.job.state.value:<18} {why}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleet.demo", description=__doc__)
    parser.add_argument("--data-dir", default="demo-data", help="a scratch data dir, emptied first")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--once", action="store_true", help="set up, show, and exit instead of serving")
    args = parser.parse_args(argv)

    data_dir = Path(args.data_dir).resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    config = FleetConfig(data_dir=data_dir, port=free_port(args.port))
    fleet = Fleet.open(config)
    people = seed(fleet)
    manager = people["ada"][0]
    for job_id, printer_id in fleet.service.dispatch_pass():
        print(f"dispatch: job {job_id} → {printer_id}")
    show_queue(fleet, manager)
    if args.once:
        fleet.close()
        return 0
    server = make_server(fleet)
    url = f"http://{server.effective_host}:{server.effective_port}"
    print(f"\nFleet API: {url}/api/v1  (document: {url}/api/v1/openapi.json)")
    for name, (member, token) in people.items():
        print(f"  {member.role.value:<7} {name:<6} token {token}")
    print(f'Try: curl -H "Authorization: Bearer {people["bob"][1]}" {url}/api/v1/queue')
    print("Ctrl-C stops the demo.", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        server.close()
        fleet.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
