"""Jobs, their history, idempotent submissions and the scheduler's claims."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..economy.pricing import grams_of
from ..errors import Conflict, Invalid, NotFound
from ..models import Job, JobEvent, PastJob, Printer
from ..notify.events import EventKind
from ..spools import runs_low, used_grams
from ..states import TERMINAL, JobState, PrinterState, check_job_transition, check_printer_transition
from . import notices, rows
from . import schema as s
from .base import UNSET, StoreBase, _insert, _Lost, _Unset
from .blobs import is_sha256_hex
from .engine import read_transaction, write_transaction
from .spools import record_use

#: Something recorded in the transaction that moves a job, given the job as it moved.
JobStep = Callable[[Connection, Job], None]


@dataclass(frozen=True)
class SubmissionKey:
    """A submission's ``Idempotency-Key`` with the hash of what the request asked for."""

    key: str
    request_hash: str
    #: A key recorded before this moment has expired: sending it again makes a new submission.
    valid_after: float


class JobRecords(StoreBase):
    """Jobs and their events (states checked against the job transition table)."""

    # -- jobs -----------------------------------------------------------------------------------

    def create_jobs(
        self,
        member_id: int,
        *,
        count: int,
        state: JobState,
        file_sha256: str,
        filename: str,
        size_bytes: int,
        material: Optional[str],
        note: str,
        analysis: Mapping[str, Any],
        colour: Optional[str] = None,
        priority: int = 0,
        actor: str,
        reason: str,
        now: float,
        then: Sequence[tuple[JobState, str, str]] = (),
        idempotency: Optional[SubmissionKey] = None,
    ) -> list[Job]:
        """Submit ``count`` copies of a file as jobs, each with its first event, all or none.

        ``then`` holds further steps (state, actor, reason) each job takes in the same transaction, so
        a crash never leaves a job stopped half-way through its intake. With ``idempotency``, the key
        is recorded in that transaction too, and when an earlier request with the same unexpired key
        made jobs, those jobs are returned and nothing is created (see :meth:`keyed_submission`).
        """
        if count < 1:
            raise Invalid("count must be at least 1", field="count")
        if not is_sha256_hex(file_sha256):
            raise Invalid("file_sha256 must be 64 lowercase hexadecimal digits", field="file_sha256")
        state = JobState(state)
        steps = [(JobState(to), step_actor, step_reason) for to, step_actor, step_reason in then]
        final = state
        for to, _, _ in steps:
            check_job_transition(final, to)
            final = to
        values = {
            "member_id": member_id,
            "state": state.value,
            "priority": priority,
            "file_sha256": file_sha256,
            "filename": filename,
            "size_bytes": size_bytes,
            "material": material,
            "colour": colour,
            "note": note,
            "analysis": rows.dumps(dict(analysis)),
            "submitted_at": now,
            "updated_at": now,
        }
        try:
            with write_transaction(self._engine) as conn:
                self._member(conn, member_id)
                if idempotency is not None:
                    earlier = self._claim_submission_key(conn, member_id, idempotency, now)
                    if earlier is not None:
                        return earlier
                ids = []
                for _ in range(count):
                    job_id = _insert(conn, s.jobs, {**values, "state": final.value})
                    self._record_event(conn, job_id, now, None, state, actor, reason, None)
                    previous = state
                    for to, step_actor, step_reason in steps:
                        self._record_event(conn, job_id, now, previous, to, step_actor, step_reason, None)
                        previous = to
                    ids.append(job_id)
                if idempotency is not None:
                    conn.execute(
                        update(s.submission_keys)
                        .where(s.submission_keys.c.member_id == member_id)
                        .where(s.submission_keys.c.key == idempotency.key)
                        .values(job_ids=json.dumps(ids))
                    )
                found = conn.execute(select(s.jobs).where(s.jobs.c.id.in_(ids)).order_by(s.jobs.c.id)).all()
        except IntegrityError:
            # Another request with the same key recorded it between our look and our insert (the
            # unique key held us until it committed): everything of ours rolled back; answer its jobs.
            if idempotency is None:
                raise
            earlier = self.keyed_submission(member_id, idempotency)
            if earlier is None:
                raise
            return earlier
        return [rows.job(row) for row in found]

    def record_past_jobs(self, jobs: Sequence[PastJob], *, actor: str) -> list[int]:
        """Prints that already happened (a lab's history, brought in), each with every step of its history.

        One transaction for all: each job in its outcome (done, failed or cancelled) on its printer,
        with its events from submission through the queue and the printer to the end, each at its own
        time. Checked first, so a bad one leaves nothing written; returns the new jobs' ids.
        """
        for past in jobs:
            if JobState(past.outcome) not in TERMINAL:
                raise Invalid("outcome must be done, failed or cancelled", field="outcome")
            if not past.submitted_at <= past.started_at <= past.finished_at:
                raise Invalid("a past job is submitted, then started, then finished", field="started_at")
            if not is_sha256_hex(past.file_sha256):
                raise Invalid("file_sha256 must be 64 lowercase hexadecimal digits", field="file_sha256")
        ids = []
        with write_transaction(self._engine) as conn:
            for member_id in sorted({past.member_id for past in jobs}):
                self._member(conn, member_id)
            for printer_id in sorted({past.printer_id for past in jobs}):
                self._printer(conn, printer_id)
            for past in jobs:
                outcome = JobState(past.outcome)
                steps = [
                    (None, JobState.SUBMITTED, past.submitted_at),
                    (JobState.SUBMITTED, JobState.QUEUED, past.submitted_at),
                    (JobState.QUEUED, JobState.ASSIGNED, past.started_at),
                    (JobState.ASSIGNED, JobState.PRINTING, past.started_at),
                    (JobState.PRINTING, outcome, past.finished_at),
                ]
                job_id = _insert(
                    conn,
                    s.jobs,
                    {
                        "member_id": past.member_id,
                        "state": outcome.value,
                        "priority": 0,
                        "file_sha256": past.file_sha256,
                        "filename": past.filename,
                        "size_bytes": past.size_bytes,
                        "material": past.material,
                        "note": "",
                        "analysis": rows.dumps(dict(past.analysis)),
                        "printer_id": past.printer_id,
                        "submitted_at": past.submitted_at,
                        "updated_at": past.finished_at,
                        "started_at": past.started_at,
                        "finished_at": past.finished_at,
                    },
                )
                for before, after, at in steps:
                    if before is not None:
                        check_job_transition(before, after)
                    self._record_event(conn, job_id, at, before, after, actor, after.value, None)
                ids.append(job_id)
        return ids

    def keyed_submission(self, member_id: int, idempotency: SubmissionKey) -> Optional[list[Job]]:
        """The jobs an earlier request with this member's unexpired key made, or None if there was none.

        :class:`Invalid` when that request asked for something else (another file, copies, material
        or note): a key names one submission.
        """
        with read_transaction(self._engine) as conn:
            return self._submission_for_key(conn, member_id, idempotency)

    def remove_expired_submission_keys(self, before: float) -> int:
        """Forget the ``Idempotency-Key`` records made before ``before``; returns how many."""
        with write_transaction(self._engine) as conn:
            result = conn.execute(delete(s.submission_keys).where(s.submission_keys.c.created_at < before))
            return int(result.rowcount or 0)

    def _submission_for_key(
        self, conn: Connection, member_id: int, idempotency: SubmissionKey
    ) -> Optional[list[Job]]:
        row = conn.execute(
            select(s.submission_keys)
            .where(s.submission_keys.c.member_id == member_id)
            .where(s.submission_keys.c.key == idempotency.key)
            .where(s.submission_keys.c.created_at >= idempotency.valid_after)
        ).first()
        if row is None:
            return None
        if row.request_hash != idempotency.request_hash:
            raise Invalid(
                "this Idempotency-Key was already used for a different submission (another file, "
                "copies, material or note): send a new key for a new submission",
                field="Idempotency-Key",
                key="idempotency_key_reused",
            )
        ids = [int(i) for i in json.loads(row.job_ids)]
        found = conn.execute(select(s.jobs).where(s.jobs.c.id.in_(ids)).order_by(s.jobs.c.id)).all()
        return [rows.job(job) for job in found]

    def _claim_submission_key(
        self, conn: Connection, member_id: int, idempotency: SubmissionKey, now: float
    ) -> Optional[list[Job]]:
        """Record the key in the open transaction, or return the jobs its earlier request made."""
        earlier = self._submission_for_key(conn, member_id, idempotency)
        if earlier is not None:
            return earlier
        # An expired record of the key is forgotten: the key starts a new submission. Only an expired
        # one: a live record another request committed since our look makes our insert fail instead.
        conn.execute(
            delete(s.submission_keys)
            .where(s.submission_keys.c.member_id == member_id)
            .where(s.submission_keys.c.key == idempotency.key)
            .where(s.submission_keys.c.created_at < idempotency.valid_after)
        )
        conn.execute(
            insert(s.submission_keys).values(
                member_id=member_id,
                key=idempotency.key,
                request_hash=idempotency.request_hash,
                job_ids="[]",
                created_at=now,
            )
        )
        return None

    def get_job(self, job_id: int) -> Job:
        with read_transaction(self._engine) as conn:
            return self._job(conn, job_id)

    def list_jobs(
        self,
        *,
        states: Optional[Collection[JobState]] = None,
        member_id: Optional[int] = None,
        printer_id: Optional[str] = None,
        limit: Optional[int] = None,
        offset: int = 0,
        newest_first: bool = False,
        started: Optional[tuple[float, float]] = None,
    ) -> list[Job]:
        """Jobs in id order (or newest first), optionally only in some states, of a member or a printer.

        ``started`` = (start, end) keeps the jobs that reached a printer in [start, end).
        """
        query = select(s.jobs).order_by(s.jobs.c.id.desc() if newest_first else s.jobs.c.id)
        if started is not None:
            query = query.where(s.jobs.c.started_at >= started[0], s.jobs.c.started_at < started[1])
        if states is not None:
            query = query.where(s.jobs.c.state.in_([JobState(state).value for state in states]))
        if member_id is not None:
            query = query.where(s.jobs.c.member_id == member_id)
        if printer_id is not None:
            query = query.where(s.jobs.c.printer_id == printer_id)
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        with read_transaction(self._engine) as conn:
            found = conn.execute(query).all()
        return [rows.job(row) for row in found]

    def count_jobs_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each state (every state named, 0 where none is); jobs are never
        deleted, so the finished states' counts only grow. One pass over the state index."""
        jobs = s.jobs.c
        with read_transaction(self._engine) as conn:
            found = conn.execute(select(jobs.state, func.count()).group_by(jobs.state)).all()
        counts = dict.fromkeys(JobState, 0)
        counts.update({JobState(state): n for state, n in found})
        return counts

    def oldest_submission(self, state: JobState) -> Optional[float]:
        """When the longest-waiting job in ``state`` was submitted, or None when no job is in it."""
        jobs = s.jobs.c
        with read_transaction(self._engine) as conn:
            value = conn.execute(
                select(func.min(jobs.submitted_at)).where(jobs.state == state.value)
            ).scalar()
        return None if value is None else float(value)

    def last_finished_job(self, printer_id: str) -> Optional[Job]:
        """The job that most recently ended on a printer (by when it ended, not by its id), or None."""
        jobs = s.jobs.c
        query = (
            select(s.jobs)
            .where(jobs.printer_id == printer_id, jobs.state.in_([state.value for state in TERMINAL]))
            .order_by(jobs.finished_at.desc(), jobs.id.desc())
            .limit(1)
        )
        with read_transaction(self._engine) as conn:
            row = conn.execute(query).first()
        return None if row is None else rows.job(row)

    def transition_job(
        self,
        job_id: int,
        to: JobState,
        *,
        actor: str,
        reason: str,
        now: float,
        expect: Optional[Collection[JobState]] = None,
        data: Optional[Mapping[str, Any]] = None,
        printer_id: Union[Optional[str], _Unset] = UNSET,
        printer_changes: Optional[Callable[[Printer], Optional[Mapping[str, Any]]]] = None,
        then: Optional[JobStep] = None,
        printed_share: Optional[float] = None,
    ) -> Job:
        """Move a job to state ``to`` and record who did it, when and why.

        A job that ends on a printer takes what it used from the spool loaded there, in the same
        transaction: the analysis's grams when done, ``printed_share`` (0-1) of them when it failed
        or was cancelled (nothing when that share is not known).

        ``printer_changes`` is given the printer the job was on (if any) and returns the printer
        columns to set (``state``, ``current_job_id``, ``last_seen``), or None to leave it: both
        change in one transaction, so a crash never leaves a printer holding a job that moved on.
        ``then`` is given the transaction and the job as it moved, to record what follows from the move
        (such as its charge, :meth:`~fleet.store.economy.EconomyRecords.charge_step`) in the same
        transaction. :class:`Conflict` if the state machine forbids it, or the job is not in one of
        ``expect``.
        """
        to = JobState(to)
        with write_transaction(self._engine) as conn:
            job = self._job(conn, job_id, lock=True)
            printer = None
            if printer_changes is not None and job.printer_id is not None:
                with suppress(NotFound):
                    printer = self._printer(conn, job.printer_id, lock=True)
            if expect is not None and job.state not in expect:
                wanted = " or ".join(sorted(JobState(state).value for state in expect))
                raise Conflict(
                    f"job {job_id} is {job.state.value}, expected {wanted}",
                    details={"state": job.state.value, "expected": sorted(JobState(x).value for x in expect)},
                )
            check_job_transition(job.state, to)
            values: dict[str, Any] = {"state": to.value, "updated_at": now}
            if to is JobState.PRINTING and job.started_at is None:
                values["started_at"] = now
            if to in TERMINAL:
                values["finished_at"] = now
            if printer_id is not UNSET:
                values["printer_id"] = printer_id
            conn.execute(update(s.jobs).where(s.jobs.c.id == job_id).values(values))
            event_id = self._record_event(conn, job_id, now, job.state, to, actor, reason, data)
            if to in TERMINAL and job.printer_id is not None:
                # Read as the job's price reads it, so the spool and the bill agree to the centigram.
                weight = float(grams_of(job.analysis.get("filament_weight_g")))
                grams = used_grams(weight, to, printed_share)
                used = record_use(conn, job_id, job.printer_id, grams, now)
                if used is not None and runs_low(used[0].remaining_grams, used[1]):
                    spool, left = used
                    notices.spool_low(
                        conn, job.printer_id, spool.label, left, occurrence=f"spool-{spool.id}", at=now
                    )
            changes = None if printer is None or printer_changes is None else printer_changes(printer)
            if printer is not None and changes:
                unknown = sorted(set(changes) - {"state", "current_job_id", "last_seen"})
                if unknown:
                    raise TypeError(f"printer_changes cannot set {', '.join(unknown)}")
                columns = dict(changes)
                if "state" in columns:
                    check_printer_transition(printer.state, PrinterState(columns["state"]))
                    columns["state"] = PrinterState(columns["state"]).value
                conn.execute(update(s.printers).where(s.printers.c.id == printer.id).values(columns))
                if (
                    columns.get("state") == PrinterState.AWAITING_BED_CLEAR.value
                    and printer.state is not PrinterState.AWAITING_BED_CLEAR
                ):
                    self._job_notice(conn, EventKind.BED_CLEAR, job_id, event_id, now)
            moved = self._job(conn, job_id)
            if then is not None:
                then(conn, moved)
            return moved

    def set_priority(self, job_id: int, priority: int, *, actor: str, now: float) -> Job:
        """Change a waiting or running job's priority, recorded as an event."""
        with write_transaction(self._engine) as conn:
            job = self._job(conn, job_id, lock=True)
            if job.state in TERMINAL:
                raise Conflict(f"job {job_id} is {job.state.value}: its priority can no longer change")
            conn.execute(
                update(s.jobs).where(s.jobs.c.id == job_id).values(priority=priority, updated_at=now)
            )
            self._record_event(
                conn,
                job_id,
                now,
                job.state,
                job.state,
                actor,
                f"priority set to {priority}",
                {"priority": priority, "previous": job.priority},
            )
            return self._job(conn, job_id)

    def job_events(self, job_id: int) -> list[JobEvent]:
        """A job's history, oldest first."""
        with read_transaction(self._engine) as conn:
            self._job(conn, job_id)
            found = conn.execute(
                select(s.job_events).where(s.job_events.c.job_id == job_id).order_by(s.job_events.c.id)
            ).all()
        return [rows.event(row) for row in found]

    def usage_records(self, since: float, *, now: Optional[float] = None) -> list[tuple[int, float, float]]:
        """``(member_id, printer_seconds, at)`` for every job that printed since ``since``.

        A finished job counts at ``finished_at``; one still on a printer counts up to ``now``.
        """
        now = time.time() if now is None else now
        jobs = s.jobs.c
        query = (
            select(jobs.member_id, jobs.started_at, jobs.finished_at)
            .where(jobs.started_at.is_not(None), or_(jobs.finished_at.is_(None), jobs.finished_at >= since))
            .order_by(jobs.id)
        )
        with read_transaction(self._engine) as conn:
            found = conn.execute(query).all()
        records = []
        for member_id, started_at, finished_at in found:
            at = now if finished_at is None else finished_at
            records.append((member_id, max(0.0, at - started_at), at))
        return records

    def assign_job(self, job_id: int, printer_id: str, *, actor: str, now: float) -> bool:
        """Give a queued job to an idle printer; False if either was taken or is busy elsewhere.

        On PostgreSQL rows another transaction holds are skipped, never waited for, so the
        scheduler moves on to the next candidate instead of queueing behind a rival.
        """
        try:
            with write_transaction(self._engine) as conn:
                return self._assign(conn, job_id, printer_id, actor=actor, now=now)
        except _Lost:
            return False

    def _assign(self, conn: Connection, job_id: int, printer_id: str, *, actor: str, now: float) -> bool:
        """The claim inside its transaction: read and lock both rows, then flip both conditionally."""
        jobs, printers = s.jobs.c, s.printers.c
        job = conn.execute(
            select(jobs.state).where(jobs.id == job_id).with_for_update(skip_locked=True)
        ).first()
        if job is None or job.state != JobState.QUEUED.value:
            return False
        printer = conn.execute(
            select(printers.state, printers.current_job_id)
            .where(printers.id == printer_id)
            .with_for_update(skip_locked=True)
        ).first()
        if printer is None or printer.state != PrinterState.IDLE.value or printer.current_job_id is not None:
            return False
        # The conditions again, so that even without row locks nothing is assigned twice.
        claimed_job = conn.execute(
            update(s.jobs)
            .where(jobs.id == job_id, jobs.state == JobState.QUEUED.value)
            .values(state=JobState.ASSIGNED.value, printer_id=printer_id, updated_at=now)
        ).rowcount
        claimed_printer = conn.execute(
            update(s.printers)
            .where(
                and_(
                    printers.id == printer_id,
                    printers.state == PrinterState.IDLE.value,
                    printers.current_job_id.is_(None),
                )
            )
            .values(state=PrinterState.ASSIGNED.value, current_job_id=job_id)
        ).rowcount
        if claimed_job != 1 or claimed_printer != 1:
            raise _Lost  # undo the half that succeeded
        event_id = self._record_event(
            conn,
            job_id,
            now,
            JobState.QUEUED,
            JobState.ASSIGNED,
            actor,
            f"assigned to printer {printer_id}",
            {"printer_id": printer_id},
        )
        owner = notices.printer_owner(conn, printer_id)
        if owner is not None:
            _, data = notices.job_data(conn, job_id, at=now)
            notices.raise_event(
                conn,
                EventKind.JOB_OFFERED,
                f"job:{job_id}:{EventKind.JOB_OFFERED.value}:{event_id}",
                data,
                at=now,
                members=[owner],
                job_id=job_id,
            )
        return True

    def referenced_blobs(self) -> set[str]:
        """The hash of every file some job (in any state) refers to."""
        with read_transaction(self._engine) as conn:
            return set(conn.execute(select(s.jobs.c.file_sha256).distinct()).scalars())

    def blob_in_use(self, sha256: str) -> bool:
        """True while a job that is not finished refers to this file."""
        terminal = [state.value for state in TERMINAL]
        with read_transaction(self._engine) as conn:
            return conn.execute(
                select(exists().where(s.jobs.c.file_sha256 == sha256, s.jobs.c.state.not_in(terminal)))
            ).scalar_one()
