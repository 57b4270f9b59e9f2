"""``/metrics``: the fleet's figures in Prometheus's exposition format, for the lab's own monitoring.

Two sources, each read when Prometheus scrapes, never copied:

- the process's :class:`~fleet.metrics.FleetMetrics` (the very counts ``/api/v1/metrics`` shows as
  JSON): each figure ``a.b`` becomes ``crowdfab_a_b`` (a counter, with ``_total``), and a histogram's
  ``_s`` becomes ``_seconds``; their labels are kept;
- the lab's state, from the store (:meth:`fleet.app.board.Board.figures`, three small queries): printers
  by state, unfinished jobs by state, the queue's length and its oldest job's wait, and finished jobs
  by outcome (jobs are never deleted, so those counts are counters that also survive a restart).
  Reading them per scrape costs less than keeping gauges up to date on every change, and a second
  fleet process on the same database changes them too.

Each Flask app gets its own :class:`~prometheus_client.CollectorRegistry` (never the library's global
one), so several fleets in one process (the tests) never share a figure. Who may scrape is the
operator's choice (:class:`fleet.config.MetricsAccess`): a bearer token, networks, or both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, current_app, request
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from ..app import FleetApp
from ..auth import parse_bearer, same_secret
from ..config import MetricsAccess
from ..errors import Forbidden, NotFound, Unauthorized
from ..metrics import FIGURES
from ..states import ACTIVE, PENDING, TERMINAL, JobState
from .blueprint import client_address, limits, refuse_while_limited

PREFIX = "crowdfab_"
PATH = "/metrics"
ACCESS = "crowdfab.metrics_access"
REGISTRY = "crowdfab.metrics_registry"

_NOT_A_NAME = re.compile(r"[^a-zA-Z0-9_]")
#: Unfinished jobs in a fixed order, so the exposition's lines do not move between scrapes.
_UNFINISHED = [state for state in JobState if state in PENDING | ACTIVE]
_FINISHED = [state for state in JobState if state in TERMINAL]


def prometheus_name(figure: str, histogram: bool) -> str:
    """``status.lag_s`` → ``crowdfab_status_lag_seconds``; ``mqtt.messages`` → ``crowdfab_mqtt_messages``."""
    name = figure[:-2] + "_seconds" if histogram and figure.endswith("_s") else figure
    return PREFIX + _NOT_A_NAME.sub("_", name)


def _help(figure: str) -> str:
    known = FIGURES.get(figure)
    return known.help if known is not None else f"The fleet's figure {figure} (see /api/v1/metrics)"


def _buckets(histogram: dict[str, Any]) -> list[tuple[str, float]]:
    """A snapshot histogram's counts (one per bucket, then the overflow) as cumulative ``le`` buckets."""
    buckets: list[tuple[str, float]] = []
    seen = 0
    for bound, count in zip(histogram["bounds_s"], histogram["counts"]):
        seen += count
        buckets.append((repr(float(bound)), seen))
    buckets.append(("+Inf", histogram["count"]))
    return buckets


class FleetCollector:
    """Reads the fleet's figures each time the registry is collected (once per scrape)."""

    def __init__(self, service: FleetApp) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        yield from self._counted()
        yield from self._state()

    def _counted(self) -> Iterator[Metric]:
        counters, histograms = self.service.metrics.series()
        #: Each figure's family and its label names, in the order the family takes their values.
        families: dict[str, tuple[Metric, tuple[str, ...]]] = {}
        # Every declared figure appears, counted or not, so a dashboard's query finds it from the start.
        for figure, known in FIGURES.items():
            name = prometheus_name(figure, known.is_histogram)
            if known.bounds is not None:
                histogram = HistogramMetricFamily(name, known.help, labels=known.labels)
                if not known.labels:
                    empty = {"bounds_s": known.bounds, "counts": [0] * (len(known.bounds) + 1), "count": 0}
                    histogram.add_metric([], _buckets(empty), 0.0)
                families[figure] = (histogram, known.labels)
            else:
                counter = CounterMetricFamily(name, known.help, labels=known.labels)
                if not known.labels:
                    counter.add_metric([], 0.0)
                families[figure] = (counter, known.labels)
        # A figure nobody declared gets a family of its own, with every label any of its series has
        # (a series without one shows it empty, which Prometheus reads as absent).
        undeclared: dict[str, set[str]] = {}
        for figure, labels, _ in (*counters, *histograms):
            if figure not in FIGURES:
                undeclared.setdefault(figure, set()).update(labels)
        filled: set[str] = set()
        for figure, labels, value in counters:
            family, names = self._family(families, filled, undeclared, figure, histogram=False)
            family.add_metric([labels.get(n, "") for n in names], float(value))  # type: ignore[attr-defined]
        for figure, labels, counts in histograms:
            family, names = self._family(families, filled, undeclared, figure, histogram=True)
            family.add_metric(  # type: ignore[attr-defined]
                [labels.get(n, "") for n in names], _buckets(counts), counts["sum_s"]
            )
        yield from (family for family, _ in families.values())

    @staticmethod
    def _family(
        families: dict[str, tuple[Metric, tuple[str, ...]]],
        filled: set[str],
        undeclared: dict[str, set[str]],
        figure: str,
        *,
        histogram: bool,
    ) -> tuple[Metric, tuple[str, ...]]:
        """The family a series belongs to; a declared one's placeholder zero goes once it is counted."""
        found = families.get(figure)
        if found is None:
            # Not declared (FleetMetrics checks that declared ones are counted as declared).
            maker = HistogramMetricFamily if histogram else CounterMetricFamily
            names = tuple(sorted(undeclared[figure]))
            found = families[figure] = (
                maker(prometheus_name(figure, histogram), _help(figure), labels=names),
                names,
            )
        elif figure not in filled:
            found[0].samples.clear()
        filled.add(figure)
        return found

    def _state(self) -> Iterator[Metric]:
        figures = self.service.board.figures()
        printers = GaugeMetricFamily(PREFIX + "printers", "Printers by state", labels=["state"])
        for printer_state, n in figures.printers.items():
            printers.add_metric([printer_state.value], n)
        yield printers
        jobs = GaugeMetricFamily(PREFIX + "jobs", "Jobs not finished yet, by state", labels=["state"])
        for state in _UNFINISHED:
            jobs.add_metric([state.value], figures.jobs[state])
        yield jobs
        finished = CounterMetricFamily(
            PREFIX + "jobs_finished",
            "Jobs that ended, by outcome (read from the database: the lab's total, the same in every "
            "fleet process)",
            labels=["outcome"],
        )
        for state in _FINISHED:
            finished.add_metric([state.value], figures.jobs[state])
        yield finished
        yield GaugeMetricFamily(
            PREFIX + "queue_length", "Jobs queued for a printer", value=figures.jobs[JobState.QUEUED]
        )
        yield GaugeMetricFamily(
            PREFIX + "queue_oldest_wait_seconds",
            "Since when the longest-queued job was submitted (0 with an empty queue)",
            value=figures.oldest_queued_s,
        )
        yield GaugeMetricFamily(
            PREFIX + "start_time_seconds",
            "When this fleet process started counting, epoch seconds",
            value=self.service.metrics.started_at,
        )


def registry_for(service: FleetApp) -> CollectorRegistry:
    """A private registry with the fleet's figures and the process's own (CPU, memory, open files)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(service))
    ProcessCollector(registry=registry)
    return registry


def check_scrape(access: MetricsAccess) -> None:
    """Refuse a scrape the operator's choice does not allow (404 when scraping is off)."""
    if not access.enabled:
        raise NotFound(
            f"{PATH} is off: start the fleet with --metrics-token-file or --metrics-allow "
            "(see docs/operations.md)"
        )
    address = client_address()
    if not access.allows_address(address):
        raise Forbidden(f"scrapes from {address} are not allowed (the fleet's --metrics-allow)")
    if access.token is None:
        return
    token = parse_bearer(request.headers.get("Authorization"))
    if token is None:
        raise Unauthorized(f"{PATH} needs the scrape token: Authorization: Bearer <token>")
    limiter = limits().tokens  # a wrong scrape token is a guess like any other token
    refuse_while_limited(limiter, "requests with an invalid token")
    if not same_secret(token, access.token):
        limiter.failed(address)
        raise Unauthorized("the scrape token is not the fleet's metrics token")


def install_metrics(app: Flask, service: FleetApp, access: MetricsAccess) -> None:
    """Serve ``/metrics`` from its own registry, guarded as ``access`` says."""
    app.extensions[ACCESS] = access
    app.extensions[REGISTRY] = registry_for(service)

    def scrape() -> Response:
        check_scrape(current_app.extensions[ACCESS])
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return Response(encode(current_app.extensions[REGISTRY]), content_type=content_type)

    app.add_url_rule(PATH, "metrics", scrape, methods=["GET"])
