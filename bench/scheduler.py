"""Time one scheduling pass over a large, mixed fleet and queue (fixed seed), against the 100 ms target.

Run: ``.venv/bin/python bench/scheduler.py [--runs N]``. Three figures per size: the dispatch loop's
pass (``explain=False``), a full pass (order, estimates, reasons ready), and a full pass that also
builds every explanation's message. The last column counts the garbage collections a pass
triggers (the pass never pauses the collector, so it must not leave much behind for it to walk).
The last size puts quotas and membership groups in play: a third of the members have limits
(printer-hours, grams, cost a month, jobs at once), every member is in a group with a priority, and
a few jobs have their quotas lifted, so the pass holds thousands of jobs and says why.
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

from datetime import date
from decimal import Decimal

from fleet.economy.periods import Period
from fleet.economy.quotas import Allowance, Limits, Used, allowance
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


def with_quotas(jobs: list[JobInfo], seed: int = 11) -> tuple[list[JobInfo], dict[int, Allowance]]:
    """The same queue with membership groups, grams and costs on every job, and a third of the members
    limited (some already near their limits), as a lab with quotas would have."""
    rng = random.Random(seed)
    members = sorted({j.member_id for j in jobs})
    groups = {m: rng.choice([("student", 1), ("resident", 0), ("pro", 2)]) for m in members}
    quotas = {}
    for m in rng.sample(members, len(members) // 3):
        limits = Limits(
            printer_hours=Decimal(rng.choice([5, 10, 20, 40])),
            grams=Decimal(rng.choice([500, 1000, 3000])),
            cost_minor=rng.choice([2000, 5000, None]),
            jobs_at_once=rng.choice([1, 2, 3, None]),
        )
        used = Used(
            seconds=rng.uniform(0, 30) * 3600, grams=rng.uniform(0, 800), cost_minor=rng.randint(0, 3000)
        )
        quotas[m] = allowance(
            {Period.MONTH: limits}, {Period.MONTH: used}, rng.randint(0, 2), {Period.MONTH: date(2025, 7, 1)}
        )
    rebuilt = []
    for j in jobs:
        grams = j.estimated_seconds / 3600 * rng.uniform(5, 20)
        group, level = groups[j.member_id]
        rebuilt.append(
            JobInfo(
                j.id, j.member_id, j.state, j.submitted_at, j.estimated_seconds, j.bounds, j.nozzle_diameter,
                j.material, j.priority, j.heats_bed, j.tools, grams=grams,
                cost_minor=round(grams * 5 + j.estimated_seconds / 36), quota_lifted=rng.random() < 0.01,
                group=group, group_priority=level,
            )
        )  # fmt: skip
    return rebuilt, quotas


def timings(run: Callable[[], object], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]


def paired_ratio(first: Callable[[], object], second: Callable[[], object], runs: int) -> float:
    """Median of ``second``'s time over ``first``'s, each pair timed back to back."""
    ratios = []
    for _ in range(runs):
        started = time.perf_counter()
        first()
        middle = time.perf_counter()
        second()
        ratios.append((time.perf_counter() - middle) / (middle - started))
    return statistics.median(ratios)


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
    quota_size = (500, 20_000)
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
    # Quotas and groups with spools and colours in play too: everything the pass weighs at once.
    printers, plain_jobs, usage, grants = build(*quota_size, spools=True)
    jobs, quotas = with_quotas(plain_jobs)
    queued = sum(1 for j in jobs if j.state is JobState.QUEUED)
    held = len(plan(printers, jobs, usage=usage, grants=grants, now=NOW, quotas=quotas).holds)
    quota_passes: list[tuple[str, Callable[[], object]]] = [
        (
            "dispatch (explain=False)",
            partial(plan, printers, jobs, usage=usage, grants=grants, now=NOW, explain=False, quotas=quotas),
        ),
        ("full: order + estimates", partial(full_pass, printers, jobs, usage, grants, quotas)),
        ("full + every message", partial(every_message, printers, jobs, usage, grants, quotas)),
    ]
    with_limits: dict[str, float] = {}
    for name, run in quota_passes:
        median, p95 = timings(run, args.runs)
        with_limits[name] = median
        ratio = median / TARGET_MS
        print(
            f"{quota_size[0]:>8} {queued:>7} {name:<28} {median:>10.1f} {p95:>8.1f} {ratio:>8.2f}x"
            f" {collections(run):>8}  (quotas, groups, spools: {held} jobs held)"
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
    q_dispatch, q_full = with_limits["dispatch (explain=False)"], with_limits["full: order + estimates"]
    print(f"  with quotas and groups, dispatch   {q_dispatch:7.1f} ms  {q_dispatch / TARGET_MS:5.2f}x")
    print(f"  with quotas and groups, full pass  {q_full:7.1f} ms  {q_full / TARGET_MS:5.2f}x")
    # Side by side: each run times the plain queue, then the same queue with quotas and groups, so
    # both see the same machine (a shared machine's load moves between the sections above).
    pairs = {
        "dispatch": (
            partial(plan, printers, plain_jobs, usage=usage, grants=grants, now=NOW, explain=False),
            partial(plan, printers, jobs, usage=usage, grants=grants, now=NOW, explain=False, quotas=quotas),
        ),
        "full": (
            partial(full_pass, printers, plain_jobs, usage, grants),
            partial(full_pass, printers, jobs, usage, grants, quotas),
        ),
    }
    for name, (without, with_them) in pairs.items():
        ratio = paired_ratio(without, with_them, args.runs)
        print(f"  quotas and groups against none ({name}, paired runs): {ratio:5.2f}x")
    printers, jobs, usage, grants = build(500, 20_000)
    result = plan(printers, jobs, usage=usage, grants=grants, now=NOW)
    print(f"\n500 printers, 20,000 jobs: {len(result.assignments)} dispatched; some explanations:")
    for job_id in result.order[:: max(1, len(result.order) // 5)][:5]:
        print(f"  job {job_id}: {result.explanations[job_id].message}")


def full_pass(
    printers: list[PrinterInfo],
    jobs: list[JobInfo],
    usage: dict[int, float],
    grants: dict,
    quotas: dict[int, Allowance] | None = None,
) -> object:
    """A plan whose estimates are worked out (reading one explanation walks the whole queue)."""
    result = plan(printers, jobs, usage=usage, grants=grants, now=NOW, quotas=quotas)
    return result.explanations[result.order[0]] if result.order else None


def every_message(
    printers: list[PrinterInfo],
    jobs: list[JobInfo],
    usage: dict[int, float],
    grants: dict,
    quotas: dict[int, Allowance] | None = None,
) -> object:
    """What the /queue endpoint does: every explanation, and every message read (messages are lazy)."""
    result = plan(printers, jobs, usage=usage, grants=grants, now=NOW, quotas=quotas)
    return [explanation.message for explanation in result.explanations.values()]


if __name__ == "__main__":
    main()
