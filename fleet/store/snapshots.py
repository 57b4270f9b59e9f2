"""Photos of a printer's plate, sent by the printer at the end of a job: kept in the database.

They are small (the fleet caps them, :data:`fleet.app.snapshots.MAX_SNAPSHOT_BYTES`) and short-lived
(swept after the lab's retention), so a row holds the bytes: no file outlives its record, and the
content-addressed blob store (whose unreferenced files are swept as orphans) stays for G-code alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlalchemy import delete, insert, select, update

from . import schema as s
from .base import StoreBase
from .engine import read_transaction, write_transaction


@dataclass(frozen=True)
class PlateSnapshot:
    """One photo of a plate: whose, after which job, when, and its bytes."""

    printer_id: str
    job_id: Optional[int]
    media_type: str
    taken_at: float
    data: bytes


class SnapshotRecords(StoreBase):
    def add_snapshot(self, snapshot: PlateSnapshot) -> None:
        """Keep ``snapshot``; an earlier one of the same job is replaced (only the latest is shown)."""
        table = s.plate_snapshots
        with write_transaction(self._engine) as conn:
            if snapshot.job_id is not None:
                conn.execute(delete(table).where(table.c.job_id == snapshot.job_id))
            conn.execute(
                insert(table).values(
                    printer_id=snapshot.printer_id,
                    job_id=snapshot.job_id,
                    media_type=snapshot.media_type,
                    taken_at=snapshot.taken_at,
                    data=snapshot.data,
                )
            )
            if snapshot.job_id is not None:
                # The job's "done" notices waited for this photo: they may go now, with it.
                box = s.outbox.c
                conn.execute(
                    update(s.outbox)
                    .where(
                        box.job_id == snapshot.job_id, box.state == "pending", box.due_at > snapshot.taken_at
                    )
                    .values(due_at=snapshot.taken_at)
                )

    def job_snapshot(self, job_id: int) -> Optional[PlateSnapshot]:
        """The latest photo taken after job ``job_id``, or None."""
        table = s.plate_snapshots
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(table).where(table.c.job_id == job_id).order_by(table.c.taken_at.desc()).limit(1)
            ).first()
        if row is None:
            return None
        return PlateSnapshot(row.printer_id, row.job_id, row.media_type, row.taken_at, bytes(row.data))

    def jobs_with_snapshots(self, job_ids: list[int]) -> set[int]:
        """Which of ``job_ids`` have a photo (for pages that show many jobs)."""
        if not job_ids:
            return set()
        table = s.plate_snapshots
        with read_transaction(self._engine) as conn:
            rows = conn.execute(select(table.c.job_id).where(table.c.job_id.in_(job_ids))).all()
        return {row.job_id for row in rows}

    def remove_snapshots_before(self, before: float) -> int:
        """Forget the photos taken before ``before``; returns how many."""
        table = s.plate_snapshots
        with write_transaction(self._engine) as conn:
            result = conn.execute(delete(table).where(table.c.taken_at < before))
            return int(result.rowcount or 0)
