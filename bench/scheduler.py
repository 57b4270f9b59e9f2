"""Time one scheduling pass over a large, mixed fleet and queue (fixed seed), against the 100 ms target.

Run: ``.venv/bin/python bench/scheduler.py [--runs N]``. Three figures per size: the dispatch loop's
pass (``explain=False``), a full pass (order, estimates, reasons ready), and a full pass that also
builds every explanation's message. The last column counts the garbage collections a pass
triggers (the pass never pauses the collector, so it must not leave much behind for it to walk).
Rows marked "spools" track the spool on most printers (colour, grams left, some running low) and
have jobs ask for colours and take grams, as a lab that tracks its spools does; the acceptance
figure is taken with spools.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleet.geometry import Box
from fleet.scheduler import JobInfo, PrinterInfo, decayed_usage, plan
from fleet.states import JobState, PrinterState

TARGET_MS = 100.0
NOW = 1_750_000_000.0

#: (build volume, share of the fleet): common desktop printers and a few big ones.
MODELS = [
    ((250, 210, 210), 30),
    ((250, 210, 220), 20),
    ((180, 180, 180), 15),
    ((220, 220, 250), 15),
    ((256, 256, 256), 10),
    ((350, 350, 340), 7),
    ((500, 500, 500), 3),
]
NOZZLES = [(0.4, 75), (0.6, 12), (0.25, 8), (0.8, 5)]
MATERIALS = [("PLA", 50), ("PETG", 25), ("ASA", 8), ("TPU", 5), ("ABS", 5), (None, 7)]
COLOURS = [("black", 30), ("white", 25), ("grey", 15), ("red", 10), ("blue", 10), ("orange", 10)]
PRINTER_STATES = [
    (PrinterState.IDLE, 8),
    (PrinterState.PRINTING, 70),
    (PrinterState.ASSIGNED, 3),
    (PrinterState.AWAITING_BED_CLEAR, 5),
    (PrinterState.OFFLINE, 8),
    (PrinterState.MAINTENANCE, 3),
    (PrinterState.ERROR, 3),
]


def pick(rng: random.Random, table: list[tuple[object, int]]) -> object:
    return rng.choices([value for value, _ in table], weights=[weight for _, weight in table])[0]


def build(
    printer_count: int, job_count: int, seed: int = 7, unique_bounds: bool = False, spools: bool = True
) -> tuple[list[PrinterInfo], list[JobInfo], dict[int, float], dict[int, frozenset[str]]]:
    """A fleet and a queue: members print a handful of models each, many times over.

    With ``spools``, 85% of the printers have a tracked spool (a colour, and 0 to 1,000 g left), and
    each model asks for a colour a third of the time and takes 8 to 20 g an hour of a typical print
    time. The spools come from a stream of their own: without them, the fleet and the queue are the
    ones this benchmark always built.
    """
    rng = random.Random(seed)
    spool_rng = random.Random(seed + 1)
    printers = []
    for n in range(printer_count):
        x, y, z = pick(rng, MODELS)  # type: ignore[misc]
        state = pick(rng, PRINTER_STATES)
        busy = state in (PrinterState.PRINTING, PrinterState.ASSIGNED, PrinterState.AWAITING_BED_CLEAR)
        printers.append(
            PrinterInfo(
                id=f"p{n:04d}",
                state=state,  # type: ignore[arg-type]
                volume=Box.of_size(x, y, z),
                nozzle_diameter=pick(rng, NOZZLES),  # type: ignore[arg-type]
                material=pick(rng, MATERIALS),  # type: ignore[arg-type]
                restricted=rng.random() < 0.1,
                busy_until=NOW + rng.uniform(0, 10 * 3600) if busy else None,
            )
        )
        if spools and spool_rng.random() < 0.85:
            printers[-1] = replace(
                printers[-1],
                colour=pick(spool_rng, COLOURS),  # type: ignore[arg-type]
                spool_grams=round(spool_rng.uniform(0, 1000), 2),
            )
    restricted = [p.id for p in printers if p.restricted]
    members = max(20, job_count // 25)
    grants = {
        m: frozenset(rng.sample(restricted, min(len(restricted), rng.randint(1, 5))))
        for m in rng.sample(range(members), members // 20)
        if restricted
    }
    # A few heavy users and a long tail, as in any shared workshop.
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(members)]
    models: dict[int, list[tuple[Box, float | None, str | None, str | None, float]]] = {}
    for m in range(members):
        mine = []
        for _ in range(rng.randint(1, 6)):
            size = rng.choice(
                [rng.uniform(10, 120)] * 6 + [rng.uniform(120, 240)] * 3 + [rng.uniform(240, 520)]
            )
            sx, sy, sz = size, rng.uniform(10, size), rng.uniform(2, min(size, 240))
            ox, oy = rng.uniform(0, 20), rng.uniform(0, 20)
            nozzle = pick(rng, NOZZLES) if rng.random() < 0.8 else None
            material = pick(rng, MATERIALS) if rng.random() < 0.95 else None
            # Drawn from their own stream: without spools, the fleet and queue are main's, draw for draw.
            hours = spool_rng.lognormvariate(8.5, 0.9) / 3600
            colour = pick(spool_rng, COLOURS) if spools and spool_rng.random() < 0.33 else None
            grams = round(hours * spool_rng.uniform(8, 20), 2) if spools else 0.0
            mine.append((Box(ox, oy, 0.0, ox + sx, oy + sy, sz), nozzle, material, colour, grams))
        models[m] = mine  # type: ignore[assignment]
    jobs = []
    for n in range(job_count):
        m = rng.choices(range(members), weights=weights)[0]
        bounds, nozzle, material, colour, grams = rng.choice(models[m])
        if unique_bounds:
            shift = rng.uniform(0, 1)
            bounds = Box(
                bounds.min_x + shift, bounds.min_y, 0.0, bounds.max_x + shift, bounds.max_y, bounds.max_z
            )
        state = rng.choices(
            [JobState.QUEUED, JobState.AWAITING_APPROVAL, JobState.SUBMITTED], weights=[96, 3, 1]
        )[0]
        jobs.append(
            JobInfo(
                id=n + 1,
                member_id=m,
                state=state,
                submitted_at=NOW - rng.uniform(0, 3 * 86400),
                estimated_seconds=rng.lognormvariate(8.5, 0.9),
                bounds=bounds if rng.random() < 0.97 else None,
                nozzle_diameter=nozzle,
                material=material,
                priority=rng.choices([0, 1, -1], weights=[97, 2, 1])[0],
                colour=colour,
                grams=grams,
            )
        )
    history = [
        (rng.randrange(members), rng.uniform(600, 36000), NOW - rng.uniform(0, 30 * 86400))
        for _ in range(5000)
    ]
    return printers, jobs, decayed_usage(history, NOW), grants


def timings(run: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]


def collections(run: Callable[[], object]) -> int:
    """Garbage collections (any generation) started during one run, from a clean young generation."""
    started = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.collect()
    gc.callbacks.append(count)
    try:
        run()
    finally:
        gc.callbacks.remove(count)
    return len(started)


def calibration_ms() -> float:
    """A fixed pure-Python loop (sum of a million ints): how fast this machine runs Python right now."""
    return min(timings(lambda: sum(range(1_000_000)), 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    #: (printers, jobs, all bounds distinct, spools tracked)
    sizes = [
        (50, 2_000, False, True),
        (200, 8_000, False, True),
        (500, 20_000, False, False),
        (500, 20_000, False, True),
        (500, 20_000, True, True),
    ]
    print(f"calibration loop: {calibration_ms():.1f} ms (machine speed right now; lower is faster)")
    #: Medians of the acceptance size (500 printers, 20,000 jobs, shared bounds, spools), for the summary.
    target: dict[str, float] = {}
    #: The same size without spools, side by side.
    plain: dict[str, float] = {}
    print(
        f"{'printers':>8} {'jobs':>7} {'pass':<28} {'median ms':>10} {'p95 ms':>8} {'/ target':>9}"
        f" {'gc runs':>8}"
    )
    for printer_count, job_count, unique, spools in sizes:
        printers, jobs, usage, grants = build(printer_count, job_count, unique_bounds=unique, spools=spools)
        queued = sum(1 for j in jobs if j.state is JobState.QUEUED)
        passes: list[tuple[str, Callable[[], object]]] = [
            (
                "dispatch (explain=False)",
                partial(plan, printers, jobs, usage=usage, grants=grants, now=NOW, explain=False),
            ),
            ("full: order + estimates", partial(full_pass, printers, jobs, usage, grants)),
            ("full + every message", partial(every_message, printers, jobs, usage, grants)),
        ]
        label = ("  (all bounds distinct)" if unique else "") + ("  spools" if spools else "  no spools")
        for name, run in passes:
            median, p95 = timings(run, args.runs)
            ratio = median / TARGET_MS
            if (printer_count, job_count, unique) == (500, 20_000, False):
                (target if spools else plain)[name] = median
            gcs = collections(run)
            print(
                f"{printer_count:>8} {queued:>7} {name:<28} {median:>10.1f} {p95:>8.1f} {ratio:>8.2f}x"
                f" {gcs:>8}{label}"
            )
    dispatch, full, every = (
        target["dispatch (explain=False)"],
        target["full: order + estimates"],
        target["full + every message"],
    )
    print(
        f"\nagainst the {TARGET_MS:.0f} ms target (500 printers, 20,000 jobs, spools and colours; "
        "median / target):"
    )
    print(f"  dispatch pass (explain=False)      {dispatch:7.1f} ms  {dispatch / TARGET_MS:5.2f}x")
    print(f"  full pass (order + estimates)      {full:7.1f} ms  {full / TARGET_MS:5.2f}x")
    print(
        f"  formatting every message on top    {every - full:7.1f} ms  (full + every message: {every:.1f} ms)"
    )
    for name in target:
        print(f"  {name:<30} spools / no spools: {target[name] / plain[name]:5.2f}x")
    printers, jobs, usage, grants = build(500, 20_000)
    result = plan(printers, jobs, usage=usage, grants=grants, now=NOW)
    print(f"\n500 printers, 20,000 jobs: {len(result.assignments)} dispatched; some explanations:")
    for job_id in result.order[:: max(1, len(result.order) // 5)][:5]:
        print(f"  job {job_id}: {result.explanations[job_id].message}")


def full_pass(
    printers: list[PrinterInfo], jobs: list[JobInfo], usage: dict[int, float], grants: dict
) -> object:
    """A plan whose estimates are worked out (reading one explanation walks the whole queue)."""
    result = plan(printers, jobs, usage=usage, grants=grants, now=NOW)
    return result.explanations[result.order[0]] if result.order else None


def every_message(
    printers: list[PrinterInfo], jobs: list[JobInfo], usage: dict[int, float], grants: dict
) -> object:
    """What the /queue endpoint does: every explanation, and every message read (messages are lazy)."""
    result = plan(printers, jobs, usage=usage, grants=grants, now=NOW)
    return [explanation.message for explanation in result.explanations.values()]


if __name__ == "__main__":
    main()
