"""Records and jobs for the store tests."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from sqlalchemy import insert, text
from sqlalchemy.engine import Connection, Engine

from fleet.geometry import Box
from fleet.models import Job, Printer
from fleet.states import JobState, PrinterState
from fleet.store import Store
from fleet.store.engine import write_transaction
from fleet.store.schema import metadata, schema_version

#: A fixed clock: tests pass ``now`` explicitly.
T0 = 1_700_000_000.0

SHA_A = "a" * 64
SHA_B = "b" * 64


def make_printer(printer_id: str, **overrides: object) -> Printer:
    """A printer record with plausible defaults."""
    values: dict[str, object] = {
        "id": printer_id,
        "name": f"Printer {printer_id}",
        "state": PrinterState.IDLE,
        "volume": Box.of_size(220, 220, 250),
        "nozzle_diameter": 0.4,
        "material": "PLA",
        "restricted": False,
        "current_job_id": None,
        "last_seen": None,
        "created_at": T0,
    }
    values.update(overrides)
    return Printer(**values)  # type: ignore[arg-type]


def submit(
    store: Store, member_id: int, *, count: int = 1, state: JobState = JobState.QUEUED, **overrides: object
) -> list[Job]:
    """Submit ``count`` jobs for a member, with plausible defaults."""
    values: dict[str, object] = {
        "file_sha256": SHA_A,
        "filename": "benchy.gcode",
        "size_bytes": 1234,
        "material": "PLA",
        "note": "",
        "analysis": {"layers": 120},
        "priority": 0,
        "actor": f"member:{member_id}",
        "reason": "submitted",
        "now": T0,
    }
    values.update(overrides)
    return store.create_jobs(member_id, count=count, state=state, **values)  # type: ignore[arg-type]


T = TypeVar("T")

#: Seconds any racing worker may take before the test fails instead of hanging.
RACE_TIMEOUT = 60.0


def race(workers: int, work: Callable[[int], T]) -> list[T]:
    """Run ``work(i)`` for every worker at once (they start together) and return the results."""
    start = threading.Barrier(workers, timeout=RACE_TIMEOUT)

    def run(index: int) -> T:
        start.wait()
        return work(index)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run, index) for index in range(workers)]
        return [future.result(timeout=RACE_TIMEOUT) for future in futures]


#: What each schema version added to the one before, as the SQL that takes it off again.
ADDED_IN_VERSION = {
    3: ["ALTER TABLE members DROP COLUMN password_hash"],
    4: ["DROP TABLE submission_keys"],
    5: ["DROP TABLE failed_attempts"],
    6: ["DROP TABLE link_codes"],
    7: [
        f"ALTER TABLE printers DROP COLUMN {c}"
        for c in ("bed_shape", "heated_bed", "heated_chamber", "extruders", "lending")
    ],
    8: ["DROP TABLE plate_snapshots"],
    9: ["DROP TABLE duty_leases"],
    10: [
        f"DROP TABLE {table}"
        for table in (
            "quota_lifts",
            "quotas",
            "group_members",
            "member_groups",
            "charge_lines",
            "charges",
            "price_lists",
        )
    ],
    11: ["ALTER TABLE api_tokens DROP COLUMN device", "ALTER TABLE link_codes DROP COLUMN used_at"],
    12: ["DROP TABLE spool_uses", "DROP TABLE spools", "ALTER TABLE jobs DROP COLUMN colour"],
    13: [f"DROP TABLE {t}" for t in ("outbox", "webhooks", "notify_channels", "notify_profiles")],
    14: [],  # PostgreSQL's notes of credentials and spools: triggers, no table
}


def create_version(conn: Connection, version: int) -> None:
    """Make an empty database into one of schema ``version`` (2 or later): today's tables, with what
    later versions added taken off, newest first."""
    assert version >= min(ADDED_IN_VERSION) - 1, f"version {version} is built by hand"
    metadata.create_all(conn)
    for added in sorted(ADDED_IN_VERSION, reverse=True):
        if added > version:
            for statement in ADDED_IN_VERSION[added]:
                conn.execute(text(statement))
    conn.execute(insert(schema_version).values(version=version))


def create_version_with_alice(engine: Engine, version: int) -> None:
    """A database of schema ``version`` with one member in it, alice: what a migration must keep."""
    with write_transaction(engine) as conn:
        create_version(conn, version)
        conn.execute(
            text("INSERT INTO members (name, role, active, created_at) VALUES ('alice', 'member', true, :t)"),
            {"t": T0},
        )
