"""``python -m fleet.demo --until-done``: the whole lab runs its sample jobs to done, then stops cleanly."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from fleet import demo


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (a leftover mosquitto names its data dir)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                cmdline = (
                    Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            if text in cmdline:
                found.append(cmdline)
    return found


def test_the_demo_prints_every_sample_job_and_leaves_nothing_running(tmp_path, capsys):
    data_dir = tmp_path / "demo-data"
    (data_dir / "stale").mkdir(parents=True)  # emptied first
    threads_before = set(threading.enumerate())
    started = time.monotonic()
    code = demo.main(
        [
            "--until-done",
            "--data-dir",
            str(data_dir),
            "--speedup",
            "200",
            "--clear-after",
            "0.5",
            "--timeout",
            "100",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    assert time.monotonic() - started < 120
    assert f"all {len(demo.JOBS)} sample jobs are done" in out
    assert "/api/v1" in out and "token cfm_" in out
    assert f"past prints recorded over {demo.HISTORY_DAYS} days: statistics at http" in out
    assert "approved job" in out and "cleared the bed of" in out
    assert not (data_dir / "stale").exists()
    assert processes_mentioning(str(data_dir)) == []
    assert set(threading.enumerate()) <= threads_before
