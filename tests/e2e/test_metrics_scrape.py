"""/metrics scraped over HTTP from a real fleet (``crowdfab-fleet serve --metrics-token-file``, its
managed Mosquitto) while a simulated printer (``crowdfab-agent`` on a simulated firmware) prints a job:
the figures move with what really happens, read back with Prometheus's own parser."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from fleet.gcode.generate import generate_box
from tests.brokers import wait_until
from tests.e2e.agents import SimulatedAgent
from tests.e2e.test_fleet_octoprint import RunningFleet, job_state, submit

SCRAPE_TOKEN = "e2e-scrape-" + "z" * 32

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(fleet: RunningFleet, token: str | None = SCRAPE_TOKEN) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{fleet.url}/metrics", headers=headers, timeout=10)


def samples(fleet: RunningFleet) -> Samples:
    response = scrape(fleet)
    assert response.status_code == 200, response.text
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_printed_job_moves_the_scraped_figures(tmp_path) -> None:
    token_file = tmp_path / "scrape-token"
    token_file.write_text(SCRAPE_TOKEN + "\n")
    fleet = RunningFleet(tmp_path / "fleet", extra_args=("--metrics-token-file", str(token_file)))
    agent = SimulatedAgent(tmp_path / "agent", "Metrics MINI", speedup=float("inf"))
    try:
        refused = scrape(fleet, token=None)
        assert refused.status_code == 401 and "crowdfab_" not in refused.text
        assert scrape(fleet, token="e2e-scrape-" + "y" * 32).status_code == 401

        manager = fleet.cli("member", "add", "ada", "--role", "manager")["token"]
        agent.start(fleet, fleet.cli("enroll-code")["code"])
        wait_until(
            lambda: value(samples(fleet), "crowdfab_printers", state="idle") == 1,
            30,
            f"the printer to be idle in the scraped figures; agent log:\n{agent.log_text()}",
        )
        before = samples(fleet)
        assert value(before, "crowdfab_mqtt_messages_total", kind="status") >= 1

        job_id = submit(fleet, manager, generate_box(10, 10, 0.6, origin=(40.0, 40.0)), "cube.gcode")
        wait_until(lambda: job_state(fleet, manager, job_id) == "done", 60, "the job to be done")

        def moved() -> bool:
            now = samples(fleet)
            return all(
                value(now, name, **labels) >= value(before, name, **labels) + 1
                for name, labels in [
                    ("crowdfab_jobs_finished_total", {"outcome": "done"}),
                    ("crowdfab_dispatch_latency_seconds_count", {"step": "accepted"}),
                    ("crowdfab_dispatch_latency_seconds_count", {"step": "started"}),
                    ("crowdfab_mqtt_messages_total", {"kind": "status"}),
                ]
            )

        wait_until(moved, 10, "the scraped figures to show the printed job")
        after = samples(fleet)
        assert value(after, "crowdfab_jobs_finished_total", outcome="done") == 1
        assert value(after, "crowdfab_jobs_finished_total", outcome="failed") == 0
        assert value(after, "crowdfab_printers", state="awaiting_bed_clear") == 1
        assert value(after, "crowdfab_queue_length") == 0
        assert value(after, "crowdfab_queue_wait_seconds_count") == 1
        # The dispatch's round trip (assignment to the printer's ack) is well under its bucket's bound.
        assert value(after, "crowdfab_dispatch_latency_seconds_bucket", step="accepted", le="10.0") == 1
        # started and done events, and at least the dispatch's ack, came in over MQTT.
        events = "crowdfab_mqtt_messages_total"
        assert value(after, events, kind="events") >= value(before, events, kind="events") + 2
        assert value(after, events, kind="ack") >= value(before, events, kind="ack") + 1
        submitted = {"method": "POST", "route": "/api/v1/jobs"}
        assert value(after, "crowdfab_http_request_duration_seconds_count", **submitted) == 1
    finally:
        agent.stop()
        fleet.stop()
