"""The fleet's MQTT client id: kept across restarts, never shared by two processes on one data dir."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fleet.server import FLEET_CLIENT_ID_FILE, fleet_client_id

HOLD = (
    "import sys; from pathlib import Path; from fleet.server import fleet_client_id;"
    "print(fleet_client_id(Path(sys.argv[1])), flush=True); sys.stdin.read()"
)


def holder(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """A process that takes the data dir's client id and keeps it until its stdin closes."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(data_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def release(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(timeout=10) == 0


def test_one_id_per_running_fleet_and_the_kept_one_again_after_a_restart(tmp_path: Path) -> None:
    first, kept = holder(tmp_path)
    assert kept.startswith("crowdfab-fleet-")
    assert (tmp_path / FLEET_CLIENT_ID_FILE).read_text().strip() == kept

    second, other = holder(tmp_path)  # a second fleet process on the same data dir
    assert other == f"{kept}-1"
    assert fleet_client_id(tmp_path) == f"{kept}-2"  # and this one, a third
    assert fleet_client_id(tmp_path) == f"{kept}-2"  # the same process asking again keeps its own

    release(first)  # the first fleet stops (or is killed): its restart gets the kept id back
    restarted, again = holder(tmp_path)
    assert again == kept
    release(restarted)
    release(second)
