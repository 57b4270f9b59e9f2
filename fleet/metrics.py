"""The fleet's own figures: counters and latency histograms, cheap to update, read by ``/api/v1/metrics``
(a JSON snapshot) and by ``/metrics`` (Prometheus, :mod:`fleet.api.prometheus`): one count, two readers.

Counters only grow and histograms are cumulative from the process's start, so a reader takes two
snapshots and subtracts: the rate over a window is the difference of the counts divided by the
difference of the snapshots' ``at``. A histogram counts observations into fixed buckets (upper
bounds in seconds); :func:`percentile` reads a percentile back from the counts.

A figure may carry labels (``count("mqtt.messages", kind="status")``): each combination of values
is its own series, named ``mqtt.messages{kind=status}`` in the snapshot. :data:`FIGURES` declares
what each figure means, its labels and its buckets; a name it does not declare is still counted.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
#: For HTTP requests, one histogram per route: fewer buckets keep each route's series short.
REQUEST_BUCKETS_S: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: How long jobs wait: from seconds to days.
WAIT_BUCKETS_S: tuple[float, ...] = (
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    28800.0,
    86400.0,
    259200.0,
    604800.0,
)


@dataclass(frozen=True)
class Figure:
    """What a counter or histogram means: its help text, label names and (histograms) buckets."""

    help: str
    labels: tuple[str, ...] = ()
    bounds: Optional[tuple[float, ...]] = None  # None: a counter

    @property
    def is_histogram(self) -> bool:
        return self.bounds is not None


#: Every figure the fleet keeps, by name (a name ending in ``_s`` is a histogram, in seconds).
FIGURES: dict[str, Figure] = {
    "mqtt.messages": Figure("MQTT messages from printers the fleet handled, by kind", ("kind",)),
    "mqtt.dropped": Figure("MQTT messages the fleet dropped (malformed, unknown printer, refused)"),
    "status.store_checks": Figure("Statuses checked against the store (the rest only refresh the live view)"),
    "status.printer_writes": Figure("Statuses that changed a printer's record"),
    "status.seen_writes": Figure("Writes of every printer's last-seen time (one transaction each)"),
    "status.lag_s": Figure(
        "From a status's timestamp on its node to the fleet's state", (), LATENCY_BUCKETS_S
    ),
    "status.handled_s": Figure("Time the fleet spent handling one status", (), LATENCY_BUCKETS_S),
    "status.superseded": Figure(
        "Statuses replaced in the ingest queue by a newer one of the same printer before their turn"
    ),
    "ingest.wait_s": Figure(
        "Time a message from a printer waited in the ingest queue before it was handled",
        (),
        LATENCY_BUCKETS_S,
    ),
    "dispatch.sent": Figure("Dispatch commands sent to printers"),
    "dispatch.resent": Figure("Dispatch commands sent again for want of an answer"),
    "dispatch.pass_s": Figure("Time one dispatch pass (plan and claims) took", (), LATENCY_BUCKETS_S),
    "dispatch.latency_s": Figure(
        "From a job's assignment to its printer accepting it (step=accepted) and starting it (step=started)",
        ("step",),
        LATENCY_BUCKETS_S,
    ),
    "queue.wait_s": Figure("From a job's submission to its assignment to a printer", (), WAIT_BUCKETS_S),
    "http.request_duration_s": Figure(
        "Time to answer an HTTP request, by method and route template", ("method", "route"), REQUEST_BUCKETS_S
    ),
    "notifications.delivered": Figure("Notifications delivered, by channel kind", ("channel",)),
    "notifications.failed": Figure(
        "Notification delivery attempts that failed, by channel kind", ("channel",)
    ),
    "notifications.send_s": Figure(
        "Time one notification or webhook delivery attempt took", (), LATENCY_BUCKETS_S
    ),
}

#: A channel kind as a label value: a URL scheme or a word (``mailto``, ``ntfy``, ``webhook``).
_CHANNEL = re.compile(r"[a-z][a-z0-9+.-]{0,31}")

_Key = tuple[str, tuple[tuple[str, str], ...]]


def series_name(name: str, labels: tuple[tuple[str, str], ...]) -> str:
    """How a series is named in a snapshot: ``name`` or ``name{k=v,k2=v2}``."""
    if not labels:
        return name
    return name + "{" + ",".join(f"{k}={v}" for k, v in labels) + "}"


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


def _check(name: str, labels: Mapping[str, str], *, histogram: bool) -> None:
    """A declared figure is counted as declared (a mistake here would split or clash its series)."""
    figure = FIGURES.get(name)
    if figure is None:
        return
    if figure.is_histogram != histogram:
        raise ValueError(f"{name} is a {'histogram' if figure.is_histogram else 'counter'}")
    if set(labels) != set(figure.labels):
        raise ValueError(f"{name} takes the labels {list(figure.labels)}, not {sorted(labels)}")


class FleetMetrics:
    """Thread-safe counters and histograms; one per fleet process."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._started_at = clock()
        self._counters: dict[_Key, int] = {}
        self._histograms: dict[_Key, Histogram] = {}

    @property
    def started_at(self) -> float:
        return self._started_at

    def count(self, name: str, n: int = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())) if labels else ())
        with self._lock:
            value = self._counters.get(key)
            if value is None:
                _check(name, labels, histogram=False)
            self._counters[key] = (value or 0) + n

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        """Add one observation to the histogram ``name`` (its buckets are :data:`FIGURES`' for it,
        else the latency buckets)."""
        key = (name, tuple(sorted(labels.items())) if labels else ())
        with self._lock:
            histogram = self._histograms.get(key)
            if histogram is None:
                _check(name, labels, histogram=True)
                figure = FIGURES.get(name)
                bounds = figure.bounds if figure is not None and figure.bounds else LATENCY_BUCKETS_S
                histogram = self._histograms[key] = Histogram(bounds)
            histogram.observe(seconds)

    def notification(self, channel: str, *, delivered: bool) -> None:
        """Count one notification delivery (or failed attempt) on a kind of channel.

        ``channel`` is the channel's kind (its URL scheme: ``mailto``, ``ntfy``, ``tgram``, or
        ``webhook``), never its URL: URLs carry secrets, and one series per URL would grow without
        bound. Anything that is not such a word counts as ``other``.
        """
        kind = channel.lower() if _CHANNEL.fullmatch(channel.lower()) else "other"
        self.count("notifications.delivered" if delivered else "notifications.failed", channel=kind)

    def counter(self, name: str, **labels: str) -> int:
        with self._lock:
            return self._counters.get((name, tuple(sorted(labels.items()))), 0)

    def series(
        self,
    ) -> tuple[list[tuple[str, dict[str, str], int]], list[tuple[str, dict[str, str], dict[str, Any]]]]:
        """Every counter series (name, labels, value) and every histogram series (name, labels, the
        histogram as :meth:`Histogram.to_dict`), sorted, read at one moment."""
        with self._lock:
            counters = [
                (name, dict(labels), value) for (name, labels), value in sorted(self._counters.items())
            ]
            histograms = [
                (name, dict(labels), h.to_dict()) for (name, labels), h in sorted(self._histograms.items())
            ]
        return counters, histograms

    def snapshot(self) -> dict[str, Any]:
        """Everything counted so far, with the time it was read (epoch seconds)."""
        at = self._clock()
        counters, histograms = self.series()
        return {
            "at": at,
            "started_at": self._started_at,
            "counters": {series_name(name, tuple(labels.items())): value for name, labels, value in counters},
            "histograms": {series_name(name, tuple(labels.items())): h for name, labels, h in histograms},
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
