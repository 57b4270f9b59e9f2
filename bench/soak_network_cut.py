"""Soak: a printer's network cut for five minutes in mid-print (issue 6's fault suite, the long run).

The same scenario as ``tests/faults/test_network_cut.py`` with a longer cut: a headless agent on a
simulated firmware reaches the broker and the fleet's HTTP through a proxy that stops carrying bytes
both ways without closing anything (as a dropped Wi-Fi link does); so does a real OctoPrint with the
plugin (leave it out with ``--no-octoprint``). The print finishes on the printer
during the cut; when the link returns, the fleet must settle the job as done from the node's journalled
events, never having given the job to the idle printer beside it.

    .venv/bin/python bench/soak_network_cut.py            # D = 300 s
    .venv/bin/python bench/soak_network_cut.py --cut 600  # longer

Prints the timings; exits 1 (with what went wrong) if any check fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults.network_cut import run_network_cut


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cut", type=float, default=300.0, help="how long the link is cut, in s (default 300)"
    )
    parser.add_argument(
        "--keepalive", type=int, default=30, help="the agent's MQTT keepalive, in s (default 30)"
    )
    parser.add_argument(
        "--print-s", type=float, default=60.0, help="how long the print takes, in s (default 60)"
    )
    parser.add_argument(
        "--no-octoprint", action="store_true", help="leave out the OctoPrint printer cut off beside the agent"
    )
    args = parser.parse_args(argv)
    if args.print_s + 5 >= args.cut:
        parser.error("--print-s must be shorter than --cut minus 5 s: the print has to end during the cut")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="crowdfab-soak-") as work:
        try:
            report = run_network_cut(
                Path(work),
                cut_s=args.cut,
                keepalive_s=args.keepalive,
                print_s=args.print_s,
                octoprint=not args.no_octoprint,
            )
        except AssertionError as exc:
            print(f"FAILED after {time.monotonic() - started:.0f} s: {exc}", file=sys.stderr)
            return 1
    print("network cut soak: passed")
    for line in report.lines():
        print(f"  {line}")
    print(f"  whole run: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
