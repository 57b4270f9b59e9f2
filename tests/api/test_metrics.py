"""The metrics endpoint: for managers, in the documented shape, and it counts what the fleet does."""

from __future__ import annotations


def test_only_managers_read_the_metrics(api):
    assert api["anonymous"].get("/api/v1/metrics").status_code == 401
    assert api["alice"].get("/api/v1/metrics").status_code == 403
    assert api["manager"].get("/api/v1/metrics").status_code == 200


def test_metrics_show_what_was_counted(api, fleet):
    fleet.app.metrics.count("mqtt.messages", 3, kind="status")
    fleet.app.metrics.observe("status.lag_s", 0.012)
    body = api["manager"].get("/api/v1/metrics").get_json()
    assert body["counters"]["mqtt.messages{kind=status}"] == 3
    lag = body["histograms"]["status.lag_s"]
    assert lag["count"] == 1 and len(lag["counts"]) == len(lag["bounds_s"]) + 1
    assert body["at"] >= body["started_at"]
