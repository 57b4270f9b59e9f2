"""What one Prometheus scrape of ``/metrics`` costs the fleet, in CPU, as the lab grows.

Builds a fleet's data in a temporary directory (N printers, J jobs, the routes a busy fleet has
answered), then times the scrape itself in this process: the collector's store queries and the
exposition text, as ``/metrics`` produces them. It prints the CPU per scrape, the share of one core
that scraping every 15 s takes, and that share beside the fleet's whole budget at 1000 printers
(half a core, ``bench/fleet_load.py``'s target): the ratio is what monitoring adds.

    .venv/bin/python bench/metrics_scrape.py                       # 1000 printers; 1k, 10k, 100k jobs
    .venv/bin/python bench/metrics_scrape.py --printers 2000 --jobs 50000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import generate_latest

from fleet.api.prometheus import registry_for
from fleet.config import FleetConfig
from fleet.geometry import Box
from fleet.models import Printer, Role
from fleet.server import Fleet
from fleet.states import JobState, PrinterState

FLEET_BUDGET_CORES = 0.5
ROUTES = (
    "/",
    "/events",
    "/signin",
    "/metrics",
    "/api/v1/jobs",
    "/api/v1/jobs/<int:job_id>",
    "/api/v1/printers",
    "/api/v1/printers/<printer_id>/bed-cleared",
    "/api/v1/printers/<printer_id>/jobs/<int:job_id>/file",
    "/api/v1/metrics",
)


def build(data_dir: Path, printers: int, jobs: int) -> Fleet:
    fleet = Fleet.open(FleetConfig(data_dir=data_dir))
    store = fleet.app.store
    states = list(PrinterState)
    for i in range(printers):
        printer = Printer(
            f"p{i:05d}",
            f"P{i}",
            states[i % len(states)],
            Box.of_size(200, 200, 200),
            0.4,
            "PLA",
            False,
            None,
            None,
            0.0,
        )
        store.create_printer(printer)
    member = store.create_member("maker", Role.MEMBER, now=0.0)
    # Most jobs of a lab that has run a while are finished; a few wait.
    spread = [JobState.DONE] * 8 + [JobState.FAILED, JobState.CANCELLED]
    made = 0
    while made < jobs:
        batch = min(500, jobs - made)
        state = JobState.QUEUED if made == 0 else spread[(made // 500) % len(spread)]
        store.create_jobs(
            member.id,
            count=batch,
            state=state,
            file_sha256="a" * 64,
            filename="part.gcode",
            size_bytes=1000,
            material="PLA",
            note="",
            analysis={},
            priority=0,
            actor="bench",
            reason="bench",
            now=float(made),
        )
        made += batch
    metrics = fleet.app.metrics
    for route in ROUTES:
        for method in ("GET", "POST"):
            for seconds in (0.004, 0.02, 0.3):
                metrics.observe("http.request_duration_s", seconds, method=method, route=route)
    for kind in ("status", "availability", "events", "ack"):
        metrics.count("mqtt.messages", 1000, kind=kind)
    for step in ("accepted", "started"):
        metrics.observe("dispatch.latency_s", 0.05, step=step)
    return fleet


def cpu_per_scrape(fleet: Fleet, repeat: int) -> tuple[float, int]:
    registry = registry_for(fleet.app)
    generate_latest(registry)  # warm: imports, the database's pages in cache
    started = time.process_time()
    for _ in range(repeat):
        text = generate_latest(registry)
    return (time.process_time() - started) / repeat, len(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--printers", type=int, default=1000)
    parser.add_argument("--jobs", default="1000,10000,100000", help="job counts, comma-separated")
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between scrapes")
    parser.add_argument("--repeat", type=int, default=20, help="scrapes timed per size")
    args = parser.parse_args()
    print(f"one /metrics scrape, {args.printers} printers, every {args.interval:g} s")
    print(f"{'jobs':>7} {'cpu ms/scrape':>13} {'kB':>4} {'share of a core':>15} {'of the fleet budget':>19}")
    for jobs in (int(j) for j in args.jobs.split(",")):
        with tempfile.TemporaryDirectory(prefix="crowdfab-scrape-") as tmp:
            fleet = build(Path(tmp) / "data", args.printers, jobs)
            try:
                cpu, size = cpu_per_scrape(fleet, args.repeat)
            finally:
                fleet.close()
        share = cpu / args.interval
        print(
            f"{jobs:>7} {cpu * 1000:>13.1f} {size / 1024:>4.0f} {share:>15.4%} "
            f"{share / FLEET_BUDGET_CORES:>19.3%}"
        )
    print(f"(the fleet's budget at 1000 printers: {FLEET_BUDGET_CORES} core, bench/fleet_load.py's target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
