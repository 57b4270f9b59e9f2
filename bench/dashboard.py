"""The dashboard under load: 200 printers whose status changes every second, watched in a real browser.

Serves a fleet with waitress (as ``crowdfab-fleet serve`` does, without the printer link), drives
each printer's live status at 1 Hz from a thread as the fleet link would, and measures in Debian's
chromium: first paint and DOMContentLoaded of ``/``, the main thread's long tasks while updates
stream in, and the delay from a change on the server to its text in the page.

    .venv/bin/python bench/dashboard.py [--printers 200] [--seconds 15]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fleet.config import FleetConfig
from fleet.geometry import Box
from fleet.models import LiveStatus, NewPrinter, PrinterSpec, Role
from fleet.server import Fleet
from tests.web.browser import browser_unavailable, chromium, served

VOLUME = {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 250, "max_y": 210, "max_z": 220}
PASSWORD = "bench password"  # noqa: S105

#: Runs in the page before its own script: watches long tasks and when each card's message changes.
OBSERVE = """
window.bench = {longTasks: [], delays: []};
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) window.bench.longTasks.push(entry.duration);
}).observe({type: "longtask", buffered: true});
document.addEventListener("DOMContentLoaded", () => {
  new MutationObserver(records => {
    const now = (performance.timeOrigin + performance.now()) / 1000;
    for (const record of records) {
      const node = record.target.nodeType === 3 ? record.target.parentNode : record.target;
      if (!node.dataset || node.dataset.field !== "message") continue;
      const sent = parseFloat((node.textContent.match(/t=([0-9.]+)/) || [])[1]);
      if (!isNaN(sent)) window.bench.delays.push(now - sent);
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
});
"""


def drive(fleet: Fleet, ids: list[str], stop: threading.Event) -> None:
    """Every printer's status changes once a second, spread evenly over the second."""
    svc = fleet.app
    step = 1.0 / len(ids)
    rng = random.Random(7)
    next_at = time.monotonic()
    while not stop.is_set():
        for printer_id in ids:
            now = time.time()
            temps = {"hotend": (200 + rng.random() * 20, 215.0), "bed": (58 + rng.random() * 4, 60.0)}
            svc.reports.set_live(
                printer_id, LiveStatus("idle", temps, None, None, None, now, message=f"t={now:.3f}")
            )
            next_at += step
            if stop.wait(max(0.0, next_at - time.monotonic())):
                return


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--printers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    reason = browser_unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Fleet.open(FleetConfig(data_dir=Path(tmp) / "data", port=0, threads=6))
        svc = fleet.app
        manager, _ = svc.members.add_member("manager", Role.MANAGER)
        svc.identity.set_password(manager, manager.id, PASSWORD)
        ids = [f"p{i:03d}" for i in range(args.printers)]
        for printer_id in ids:
            spec = PrinterSpec(Box.from_dict(VOLUME))
            svc.printers.add_printer(manager, NewPrinter(printer_id, f"Printer {printer_id}", spec))
        stop = threading.Event()
        driver = threading.Thread(target=drive, args=(fleet, ids, stop), daemon=True)
        driver.start()
        try:
            with served(fleet) as url, chromium() as browser:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(f"{url}/signin")
                page.fill("#name", "manager")
                page.fill("#password", PASSWORD)
                page.click("button.primary")
                page.wait_for_url(f"{url}/")
                page.add_init_script(OBSERVE)
                page.goto(f"{url}/")
                # The load event can come before chromium reports its first paints: wait for them.
                page.wait_for_function("performance.getEntriesByType('paint').length >= 2", timeout=10_000)
                timing = page.evaluate(
                    """() => {
                      const nav = performance.getEntriesByType("navigation")[0];
                      const paints = performance.getEntriesByType("paint");
                      const paint = Object.fromEntries(paints.map(p => [p.name, p.startTime]));
                      return {dcl: nav.domContentLoadedEventEnd, fp: paint["first-paint"],
                              fcp: paint["first-contentful-paint"], bytes: nav.transferSize};
                    }"""
                )
                page.wait_for_function("window.bench.delays.length > 0", timeout=10_000)
                page.evaluate("window.bench.longTasks = []; window.bench.delays = []")
                time.sleep(args.seconds)  # a benchmark's measuring window, not a test's wait
                seen = page.evaluate("window.bench")
                context.close()
        finally:
            stop.set()
            driver.join(5)
            fleet.close()
    delays = [d * 1000 for d in seen["delays"]]
    tasks = seen["longTasks"]
    print(f"dashboard with {args.printers} printers, each changing at 1 Hz, watched for {args.seconds:.0f} s")
    print(
        f"  first paint {timing['fp']:.0f} ms, first contentful paint {timing['fcp']:.0f} ms, "
        f"DOMContentLoaded {timing['dcl']:.0f} ms, page {timing['bytes'] / 1024:.0f} KiB"
    )
    if delays:
        print(
            f"  updates applied: {len(delays)} ({len(delays) / args.seconds:.0f}/s); server change → DOM: "
            f"median {statistics.median(delays):.0f} ms, p95 {percentile(delays, 0.95):.0f} ms, "
            f"max {max(delays):.0f} ms"
        )
    print(
        f"  main-thread long tasks (>50 ms): {len(tasks)}, longest {max(tasks, default=0):.0f} ms, "
        f"total {sum(tasks):.0f} ms"
    )
    ok = timing["dcl"] < 1000 and (timing["fp"] or 0) < 1000
    print("  first paint and DOMContentLoaded under 1 s:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
