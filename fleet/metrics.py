"""The fleet's own figures: counters and latency histograms, cheap to update, read by ``/api/v1/metrics``.

Counters only grow and histograms are cumulative from the process's start, so a reader takes two
snapshots and subtracts: the rate over a window is the difference of the counts divided by the
difference of the snapshots' ``at``. A histogram counts observations into fixed buckets (upper
bounds in seconds); :func:`percentile` reads a percentile back from the counts.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

#: Bucket upper bounds, in seconds: fine where the targets are (tens to hundreds of milliseconds).
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    10.0,
    30.0,
    60.0,
)


class Histogram:
    """Counts of observations per bucket; the last count is for anything above the last bound."""

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("histogram bounds must be distinct and ascending")
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        value = max(0.0, value)
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def to_dict(self) -> dict[str, Any]:
        return {
            "bounds_s": list(self.bounds),
            "counts": list(self.counts),
            "count": sum(self.counts),
            "sum_s": round(self.total, 6),
        }


class FleetMetrics:
    """Thread-safe counters and histograms; one per fleet process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._started_at = clock()
        self._counters: dict[str, int] = {}
        self._histograms: dict[str, Histogram] = {}

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + n

    def observe(self, name: str, seconds: float) -> None:
        """Add one observation to the histogram ``name`` (made with the latency buckets on first use)."""
        with self._lock:
            histogram = self._histograms.get(name)
            if histogram is None:
                histogram = self._histograms[name] = Histogram()
            histogram.observe(seconds)

    def counter(self, name: str) -> int:
        with self._lock:
            return self._counters.get(name, 0)

    def snapshot(self) -> dict[str, Any]:
        """Everything counted so far, with the time it was read (epoch seconds)."""
        with self._lock:
            return {
                "at": self._clock(),
                "started_at": self._started_at,
                "counters": dict(sorted(self._counters.items())),
                "histograms": {name: h.to_dict() for name, h in sorted(self._histograms.items())},
            }


def difference(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What was counted between two snapshots of the same process (``after`` taken later)."""
    counters = {name: value - before["counters"].get(name, 0) for name, value in after["counters"].items()}
    histograms = {}
    for name, hist in after["histograms"].items():
        old = before["histograms"].get(name)
        old_counts = old["counts"] if old else [0] * len(hist["counts"])
        counts = [a - b for a, b in zip(hist["counts"], old_counts)]
        histograms[name] = {
            "bounds_s": hist["bounds_s"],
            "counts": counts,
            "count": sum(counts),
            "sum_s": hist["sum_s"] - (old["sum_s"] if old else 0.0),
        }
    return {"seconds": after["at"] - before["at"], "counters": counters, "histograms": histograms}


def percentile(histogram: Mapping[str, Any], q: float) -> Optional[float]:
    """The ``q`` (0-1) percentile of a histogram's dict, as the upper bound of the bucket it falls in
    (so at most one bucket too pessimistic); None when it counted nothing, inf above the last bound."""
    counts: list[int] = list(histogram["counts"])
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    bounds: list[float] = list(histogram["bounds_s"])
    for i, count in enumerate(counts):
        seen += count
        if seen >= rank and count:
            return bounds[i] if i < len(bounds) else float("inf")
    return float("inf")
