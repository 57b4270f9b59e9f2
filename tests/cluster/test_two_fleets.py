"""Two fleet processes behind HAProxy, one PostgreSQL, one Mosquitto: a SIGKILL and a rolling restart.

The lean run of ``bench/cluster.py`` (which has the 500-printer one): 20 light printers on their own
enrolled logins at 1 Hz, members submitting through HAProxy (each submission sent again with its
Idempotency-Key until answered), a signed-in live page through HAProxy. The fleet process holding the
once-only duties, which also serves the page, is killed; then both are restarted one at a time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.cluster import HAPROXY, Cluster, run_scenario
from tests.store.backends import PostgresServer

pytestmark = pytest.mark.postgres


def test_a_killed_fleet_process_and_a_rolling_restart_lose_nothing(
    pg_server: PostgresServer, tmp_path: Path
) -> None:
    assert shutil.which(HAPROXY) or Path(HAPROXY).exists(), "haproxy is missing: make system-deps"
    cluster = Cluster(tmp_path / "cluster", printers=20, database_url=pg_server.create_database())
    cluster.start()
    try:
        report = run_scenario(cluster, workers=1, rate=4.0, settle_s=1.5, log=lambda _line: None)
    finally:
        cluster.close()
    summary = "\n".join(report.lines())
    print(summary)  # the figures, for ``pytest -s``
    assert report.answered >= 10, summary
    assert not report.lost and not report.doubled, summary
    assert not report.started_twice, summary
    assert report.jobs_done > 0, summary
    assert report.takeover_s is not None and report.takeover_s <= 10.0, summary
    # A browser waits the stream's "retry" (1 s) before it reconnects, to the survivor.
    assert report.page_back_s is not None and report.page_back_s <= 2.0, summary
    assert all(seconds <= 2.0 for seconds in report.change_to_page_s), summary
    assert report.rolling_5xx == 0, summary
