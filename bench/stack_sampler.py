"""Runs ``crowdfab-fleet`` with a sampling profiler over all its threads (``fleet_load.py --profile``).

Every ``interval`` seconds a thread reads every other thread's Python stack and counts it; at exit
(SIGINT or SIGTERM, as ``fleet_load.py`` stops the fleet) it writes the functions seen most often,
on top of the stack ("self") and anywhere in it ("total"), per thread name:

    python bench/stack_sampler.py OUT.txt serve --data-dir ...
"""

from __future__ import annotations

import collections
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _where(frame: FrameType) -> str:
    code = frame.f_code
    return f"{Path(code.co_filename).name}:{code.co_name}"


class Sampler:
    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.samples = 0
        self.self_counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.total_counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.busy: collections.Counter[str] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stack-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            names = {t.ident: t.name for t in threading.enumerate()}
            self.samples += 1
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                name = names.get(ident, str(ident))
                top = _where(frame)
                # A thread parked in a wait is not using the CPU: count only those doing work.
                if frame.f_code.co_name in ("wait", "select", "poll", "_wait_for_tstate_lock", "accept"):
                    continue
                self.busy[name] += 1
                self.self_counts[(name, top)] += 1
                seen = set()
                f: Optional[FrameType] = frame
                while f is not None:
                    where = _where(f)
                    if where not in seen:
                        seen.add(where)
                        self.total_counts[(name, where)] += 1
                    f = f.f_back

    def report(self, limit: int = 40) -> str:
        lines = [
            f"{self.samples} samples every {self.interval * 1000:.0f} ms",
            "",
            "busy samples per thread:",
        ]
        lines += [f"  {count:7d}  {name}" for name, count in self.busy.most_common()]
        lines += ["", "self (top of stack):"]
        lines += [f"  {c:7d}  {name:24s} {where}" for (name, where), c in self.self_counts.most_common(limit)]
        lines += ["", "total (anywhere in the stack):"]
        lines += [
            f"  {c:7d}  {name:24s} {where}" for (name, where), c in self.total_counts.most_common(limit)
        ]
        return "\n".join(lines) + "\n"


def main() -> int:
    out = Path(sys.argv[1])
    argv = sys.argv[2:]
    sampler = Sampler()

    def finish(*_: object) -> None:
        sampler.stop()
        out.write_text(sampler.report())
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    sampler.start()
    from fleet.cli import main as fleet_main

    started = time.monotonic()
    try:
        return fleet_main(argv)
    finally:
        sampler.stop()
        if not out.exists():
            out.write_text(sampler.report() + f"(ran {time.monotonic() - started:.0f} s)\n")


if __name__ == "__main__":
    sys.exit(main())
