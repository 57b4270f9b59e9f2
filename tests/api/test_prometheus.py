"""/metrics in Prometheus's format: read back with Prometheus's own parser, from the same counts as
/api/v1/metrics, with the lab's state read when scraped and one registry per app."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleet.api import create_app
from fleet.config import FleetConfig, MetricsAccess
from fleet.models import Role
from fleet.server import Fleet
from fleet.states import JobState, PrinterState
from tests.store.helpers import T0, make_printer, submit

TOKEN = "prometheus-" + "t" * 30


def scraper(fleet):
    app = create_app(fleet.app, {"CROWDFAB_METRICS_ACCESS": MetricsAccess.of(TOKEN)})
    app.testing = True
    return app.test_client()


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (sample name, sorted labels) → value."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_the_lab_state_is_read_from_the_store_when_scraped(fleet) -> None:
    client = scraper(fleet)
    store = fleet.app.store
    member = store.create_member("alice", Role.MEMBER, now=T0)
    store.create_printer(make_printer("mini-1"))
    store.create_printer(make_printer("mini-2", state=PrinterState.OFFLINE))
    first, *_ = submit(store, member.id, count=3, now=fleet.app.clock() - 600)
    store.transition_job(first.id, JobState.CANCELLED, actor="test", reason="no", now=T0 + 1)

    samples = scrape(client)

    assert samples[("crowdfab_printers", (("state", "idle"),))] == 1
    assert samples[("crowdfab_printers", (("state", "offline"),))] == 1
    assert samples[("crowdfab_printers", (("state", "maintenance"),))] == 0
    assert samples[("crowdfab_queue_length", ())] == 2
    assert samples[("crowdfab_jobs", (("state", "queued"),))] == 2
    assert samples[("crowdfab_jobs_finished_total", (("outcome", "cancelled"),))] == 1
    assert samples[("crowdfab_jobs_finished_total", (("outcome", "done"),))] == 0
    assert 600 <= samples[("crowdfab_queue_oldest_wait_seconds", ())] < 700
    assert ("crowdfab_jobs", (("state", "done"),)) not in samples  # finished jobs are the counter's
    assert samples[("process_resident_memory_bytes", ())] > 0


def test_the_json_snapshot_and_the_exposition_show_the_same_counts(fleet) -> None:
    client = scraper(fleet)
    _, token = fleet.app.members.add_member("ada", Role.MANAGER)
    fleet.app.metrics.count("mqtt.messages", 7, kind="status")
    fleet.app.metrics.observe("dispatch.latency_s", 0.04, step="accepted")
    fleet.app.metrics.observe("dispatch.latency_s", 0.4, step="accepted")

    samples = scrape(client)
    body = client.get("/api/v1/metrics", headers={"Authorization": f"Bearer {token}"}).get_json()

    assert samples[("crowdfab_mqtt_messages_total", (("kind", "status"),))] == 7
    assert body["counters"]["mqtt.messages{kind=status}"] == 7
    accepted = (("step", "accepted"),)
    assert samples[("crowdfab_dispatch_latency_seconds_count", accepted)] == 2
    assert samples[("crowdfab_dispatch_latency_seconds_sum", accepted)] == pytest.approx(0.44)
    assert samples[("crowdfab_dispatch_latency_seconds_bucket", (("le", "0.05"), *accepted))] == 1
    assert samples[("crowdfab_dispatch_latency_seconds_bucket", (("le", "+Inf"), *accepted))] == 2
    assert body["histograms"]["dispatch.latency_s{step=accepted}"]["count"] == 2
    # Declared figures show from the start, at zero, so a dashboard's query finds them.
    assert samples[("crowdfab_mqtt_dropped_total", ())] == 0
    assert samples[("crowdfab_queue_wait_seconds_count", ())] == 0


def test_requests_are_timed_by_route_template_not_by_raw_path(fleet) -> None:
    client = scraper(fleet)
    _, token = fleet.app.members.add_member("alice", Role.MEMBER)
    for job_id in (123, 456, 789):
        client.get(f"/api/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"})
    client.get("/no/such/page/xyz")

    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    text = response.get_data(as_text=True)
    samples = scrape(client)

    job = (("method", "GET"), ("route", "/api/v1/jobs/<int:job_id>"))
    assert samples[("crowdfab_http_request_duration_seconds_count", job)] == 3
    assert (
        samples[("crowdfab_http_request_duration_seconds_count", (("method", "GET"), ("route", "unmatched")))]
        == 1
    )
    assert "/api/v1/jobs/123" not in text and "xyz" not in text


def test_each_app_has_its_own_registry(fleet, tmp_path: Path) -> None:
    other = Fleet.open(FleetConfig(data_dir=tmp_path / "other"))
    try:
        fleet.app.metrics.count("mqtt.messages", 5, kind="ack")
        other.app.store.create_printer(make_printer("elsewhere"))
        ours, theirs = scrape(scraper(fleet)), scrape(scraper(other))
    finally:
        other.close()
    assert ours[("crowdfab_mqtt_messages_total", (("kind", "ack"),))] == 5
    assert ("crowdfab_mqtt_messages_total", (("kind", "ack"),)) not in theirs
    assert ours[("crowdfab_printers", (("state", "idle"),))] == 0
    assert theirs[("crowdfab_printers", (("state", "idle"),))] == 1


def test_an_undeclared_figure_is_exposed_under_its_own_name(fleet) -> None:
    fleet.app.metrics.count("live.refreshes", 4, reason="resync")
    fleet.app.metrics.count("live.refreshes", 1, page="queue")  # another label: the family takes both
    fleet.app.metrics.observe("live.snapshot_s", 0.2)
    samples = scrape(scraper(fleet))
    assert samples[("crowdfab_live_refreshes_total", (("page", ""), ("reason", "resync")))] == 4
    assert samples[("crowdfab_live_refreshes_total", (("page", "queue"), ("reason", "")))] == 1
    assert samples[("crowdfab_live_snapshot_seconds_count", ())] == 1


def test_a_scraper_that_asks_for_openmetrics_gets_it(fleet) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics

    fleet.app.metrics.count("mqtt.messages", 2, kind="events")
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    response = scraper(fleet).get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", "Accept": accept})
    assert response.content_type.startswith("application/openmetrics-text")
    families = {family.name: family for family in openmetrics(response.get_data(as_text=True))}
    [events] = [s for s in families["crowdfab_mqtt_messages"].samples if s.labels == {"kind": "events"}]
    assert events.value == 2
