"""The fleet's counters and histograms, and reading rates and percentiles back from two snapshots."""

from __future__ import annotations

import math

import pytest

from fleet.metrics import FIGURES, LATENCY_BUCKETS_S, FleetMetrics, Histogram, difference, percentile


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_observations_land_in_the_bucket_whose_bound_covers_them():
    histogram = Histogram((0.01, 0.1, 1.0))
    for value in (0.0, 0.01, 0.011, 0.5, 1.0, 7.0, -3.0):
        histogram.observe(value)
    assert histogram.to_dict()["counts"] == [3, 1, 2, 1]
    assert histogram.to_dict()["count"] == 7


def test_bounds_must_ascend():
    with pytest.raises(ValueError, match="ascending"):
        Histogram((0.1, 0.01))


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0.5, 0.01), (0.9, 0.1), (0.99, 1.0), (1.0, math.inf)],
)
def test_percentiles_read_back_as_bucket_bounds(q, expected):
    histogram = Histogram((0.01, 0.1, 1.0))
    for value in [0.005] * 50 + [0.05] * 40 + [0.5] * 9 + [5.0]:
        histogram.observe(value)
    assert percentile(histogram.to_dict(), q) == expected


def test_percentile_of_nothing_is_none():
    assert percentile(Histogram((1.0,)).to_dict(), 0.5) is None


def test_a_window_is_the_difference_of_two_snapshots():
    clock = Clock()
    metrics = FleetMetrics(clock)
    metrics.count("mqtt.messages", 5, kind="status")
    metrics.observe("status.lag_s", 0.004)
    before = metrics.snapshot()
    clock.now += 2.0
    metrics.count("mqtt.messages", 10, kind="status")
    metrics.count("mqtt.messages", kind="ack")
    metrics.observe("status.lag_s", 0.3)
    metrics.observe("dispatch.pass_s", 0.02)
    window = difference(before, metrics.snapshot())
    assert window["seconds"] == 2.0
    assert window["counters"] == {"mqtt.messages{kind=ack}": 1, "mqtt.messages{kind=status}": 10}
    assert window["histograms"]["status.lag_s"]["count"] == 1
    assert percentile(window["histograms"]["status.lag_s"], 0.5) == 0.3
    assert window["histograms"]["dispatch.pass_s"]["count"] == 1


def test_labelled_series_are_counted_apart_whatever_the_order_of_their_labels():
    metrics = FleetMetrics(Clock())
    metrics.observe("http.request_duration_s", 0.02, method="GET", route="/api/v1/jobs")
    metrics.observe("http.request_duration_s", 0.03, route="/api/v1/jobs", method="GET")
    metrics.observe("http.request_duration_s", 0.5, method="POST", route="/api/v1/jobs")
    metrics.count("mqtt.messages", kind="status")
    histograms = metrics.snapshot()["histograms"]
    assert histograms["http.request_duration_s{method=GET,route=/api/v1/jobs}"]["count"] == 2
    assert histograms["http.request_duration_s{method=POST,route=/api/v1/jobs}"]["count"] == 1
    assert metrics.counter("mqtt.messages", kind="status") == 1
    assert metrics.counter("mqtt.messages", kind="ack") == 0


def test_a_declared_histogram_takes_its_own_buckets():
    metrics = FleetMetrics(Clock())
    metrics.observe("queue.wait_s", 7200.0)
    metrics.observe("status.lag_s", 0.01)
    histograms = metrics.snapshot()["histograms"]
    assert histograms["queue.wait_s"]["bounds_s"] == list(FIGURES["queue.wait_s"].bounds or ())
    assert histograms["queue.wait_s"]["bounds_s"][-1] >= 86400  # waits are counted up to days
    assert histograms["status.lag_s"]["bounds_s"] == list(LATENCY_BUCKETS_S)


@pytest.mark.parametrize(
    ("channel", "label"),
    [
        ("mailto", "mailto"),
        ("NTFY", "ntfy"),
        ("webhook", "webhook"),
        ("tgram", "tgram"),
        ("mailto://ada:secret@mail.example", "other"),  # a URL is never a label: it holds secrets
        ("", "other"),
        ("x" * 40, "other"),
    ],
)
def test_notifications_are_counted_by_channel_kind_never_by_url(channel, label):
    metrics = FleetMetrics(Clock())
    metrics.notification(channel, delivered=True)
    metrics.notification(channel, delivered=False)
    metrics.notification(channel, delivered=False)
    assert metrics.counter("notifications.delivered", channel=label) == 1
    assert metrics.counter("notifications.failed", channel=label) == 2
    assert all("secret" not in name for name in metrics.snapshot()["counters"])


def test_a_declared_figure_must_be_counted_as_declared():
    metrics = FleetMetrics(Clock())
    with pytest.raises(ValueError, match=r"takes the labels \['kind'\]"):
        metrics.count("mqtt.messages")
    with pytest.raises(ValueError, match="is a histogram"):
        metrics.count("status.lag_s")
    with pytest.raises(ValueError, match="is a counter"):
        metrics.observe("dispatch.sent", 0.1)
    metrics.count("something.new", where="here")  # an undeclared figure is counted as it comes
    assert metrics.counter("something.new", where="here") == 1


def test_every_figure_the_fleet_counts_or_observes_is_declared() -> None:
    """An undeclared figure is still counted, but /metrics then has no HELP line and no fixed buckets
    for it: each name the fleet's code passes to ``count`` or ``observe`` must be in FIGURES."""
    import re
    from pathlib import Path

    used: set[str] = set()
    for source in (Path(__file__).parent.parent / "fleet").rglob("*.py"):
        used |= set(re.findall(r"\.(?:count|observe)\(\s*\"([a-z_.]+)\"", source.read_text(encoding="utf-8")))
    assert {"status.superseded", "ingest.wait_s", "status.lag_s"} <= used, (
        "the scan finds the fleet's figures"
    )
    assert sorted(used - set(FIGURES)) == []
