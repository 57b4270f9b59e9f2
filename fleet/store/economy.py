"""The lab's economy: price lists, the ledger (charges and their lines), membership groups, quotas, lifts."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Optional

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from ..economy.ledger import LedgerEntry
from ..economy.periods import Period
from ..economy.pricing import Charge, ChargeLine, LineKind
from ..economy.quotas import Limits, Quota
from ..errors import Conflict, NotFound
from ..models import Job, Page
from ..states import ACTIVE, PENDING, TERMINAL, JobState
from . import rows
from . import schema as s
from .base import StoreBase, _insert
from .engine import read_transaction, write_transaction
from .jobs import JobStep

#: What a job that ended is charged, and the price list it comes from; None: nothing (it never printed).
Pricer = Callable[[Job], Optional[tuple[Charge, Optional[int]]]]


@dataclass(frozen=True)
class Group:
    """A membership group ("student", "resident", "pro"): its priority adds to its members' jobs'."""

    id: int
    name: str
    priority: int
    created_at: float


@dataclass(frozen=True)
class HeldQuota:
    """A quota with who holds it: a group (each of its members) or one member."""

    group_id: Optional[int]
    member_id: Optional[int]
    quota: Quota


@dataclass(frozen=True)
class PriceListRecord:
    id: int
    body: dict[str, Any]
    actor: str
    created_at: float


@dataclass(frozen=True)
class UsageRow:
    """A job that started, as a quota counts it."""

    member_id: int
    job_id: int
    state: JobState
    #: None for a job assigned to a printer that has not started it yet.
    started_at: Optional[float]
    finished_at: Optional[float]
    analysis: dict[str, Any]
    #: The ledger's total for the job, once it ended (minor units).
    charged_minor: Optional[int]
    material: Optional[str] = None
    printer_id: Optional[str] = None


def _group_of(row: Row[Any]) -> Group:
    return Group(row.id, row.name, row.priority, row.created_at)


def _quota(row: Row[Any]) -> HeldQuota:
    limits = Limits(
        printer_hours=None if row.printer_hours is None else Decimal(row.printer_hours),
        grams=None if row.grams is None else Decimal(row.grams),
        cost_minor=row.cost_minor,
        jobs_at_once=row.jobs_at_once,
    )
    return HeldQuota(row.group_id, row.member_id, Quota(Period(row.period), limits))


def holder(group_id: Optional[int], member_id: Optional[int]) -> str:
    if (group_id is None) == (member_id is None):
        raise ValueError("a quota is held by a group or by a member")
    return f"group:{group_id}" if group_id is not None else f"member:{member_id}"


class EconomyRecords(StoreBase):
    """Every method is one transaction; a refusal writes nothing."""

    # -- price lists ------------------------------------------------------------------------------

    def price_list(self) -> Optional[PriceListRecord]:
        """The current price list (the latest), or None when the lab has set none."""
        table = s.price_lists
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(table).order_by(table.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        return PriceListRecord(row.id, json.loads(row.body), row.actor, row.created_at)

    def add_price_list(self, body: dict[str, Any], *, actor: str, now: float) -> PriceListRecord:
        """Make ``body`` (checked by the caller) the current price list; earlier ones stay for the ledger."""
        with write_transaction(self._engine) as conn:
            list_id = _insert(
                conn, s.price_lists, {"body": rows.dumps(body), "actor": actor, "created_at": now}
            )
        return PriceListRecord(list_id, body, actor, now)

    # -- the ledger -------------------------------------------------------------------------------

    @staticmethod
    def _record_charge(
        conn: Connection, job: Job, charge: Charge, price_list_id: Optional[int], at: float
    ) -> None:
        """Write a job's charge and its lines in the open transaction (once: a job has one charge)."""
        charge_id = _insert(
            conn,
            s.charges,
            {
                "job_id": job.id,
                "member_id": job.member_id,
                "at": at,
                "currency": charge.currency,
                "total_minor": charge.total_minor,
                "outcome": job.state.value,
                "price_list_id": price_list_id,
            },
        )
        if charge.lines:
            conn.execute(
                insert(s.charge_lines),
                [
                    {
                        "charge_id": charge_id,
                        "position": n,
                        "kind": line.kind.value,
                        "description": line.description,
                        "quantity": str(line.quantity),
                        "unit": line.unit,
                        "unit_price": str(line.unit_price),
                        "amount_minor": line.amount_minor,
                    }
                    for n, line in enumerate(charge.lines)
                ],
            )

    def charge_step(self, pricer: Pricer) -> JobStep:
        """A step for :meth:`~fleet.store.jobs.JobRecords.transition_job`: a job that ends is charged
        what ``pricer`` says, in the transaction that ends it (and only once)."""

        def step(conn: Connection, job: Job) -> None:
            if job.state not in TERMINAL:
                return
            known = conn.execute(select(s.charges.c.id).where(s.charges.c.job_id == job.id)).first()
            if known is not None:
                return
            priced = pricer(job)
            if priced is not None:
                charge, price_list_id = priced
                self._record_charge(conn, job, charge, price_list_id, job.finished_at or job.updated_at)

        return step

    def _entries(self, conn: Connection, found: Sequence[Row[Any]]) -> list[LedgerEntry]:
        ids = [row.id for row in found]
        lines: dict[int, list[ChargeLine]] = {i: [] for i in ids}
        if ids:
            table = s.charge_lines
            for line in conn.execute(
                select(table).where(table.c.charge_id.in_(ids)).order_by(table.c.charge_id, table.c.position)
            ):
                lines[line.charge_id].append(
                    ChargeLine(
                        LineKind(line.kind),
                        line.description,
                        Decimal(line.quantity),
                        line.unit,
                        Decimal(line.unit_price),
                        int(line.amount_minor),
                    )
                )
        return [
            LedgerEntry(
                row.id,
                row.job_id,
                row.member_id,
                row.at,
                row.outcome,
                row.price_list_id,
                Charge(row.currency, tuple(lines[row.id])),
            )
            for row in found
        ]

    def charges_by_job(self, job_ids: Collection[int]) -> dict[int, LedgerEntry]:
        """The ledger's charge of each of ``job_ids`` that has one (job id → entry), lines included."""
        table = s.charges
        wanted = sorted(set(job_ids))
        result: dict[int, LedgerEntry] = {}
        with read_transaction(self._engine) as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found = conn.execute(
                    select(table).where(table.c.job_id.in_(chunk)).order_by(table.c.id)
                ).all()
                result.update((entry.job_id, entry) for entry in self._entries(conn, found))
        return result

    def ledger_page(
        self,
        *,
        member_id: Optional[int] = None,
        since: Optional[float] = None,
        until: Optional[float] = None,
        after: Optional[int] = None,
        limit: Optional[int] = 100,
    ) -> Page[LedgerEntry, int]:
        """Charges in id order (a member's or everyone's) fixed in ``[since, until)``."""
        table = s.charges
        query = select(table).order_by(table.c.id)
        if member_id is not None:
            query = query.where(table.c.member_id == member_id)
        if since is not None:
            query = query.where(table.c.at >= since)
        if until is not None:
            query = query.where(table.c.at < until)
        if after is not None:
            query = query.where(table.c.id > after)
        if limit is not None:
            query = query.limit(limit + 1)
        with read_transaction(self._engine) as conn:
            found = conn.execute(query).all()
            more = limit is not None and len(found) > limit
            entries = self._entries(conn, found[:limit] if limit is not None else found)
        return Page(entries, entries[-1].id if more and entries else None)

    # -- membership groups ------------------------------------------------------------------------

    def list_groups(self) -> list[Group]:
        with read_transaction(self._engine) as conn:
            found = conn.execute(select(s.member_groups).order_by(s.member_groups.c.name)).all()
        return [_group_of(row) for row in found]

    def _group(self, conn: Connection, group_id: int) -> Group:
        row = self._by_id(conn, s.member_groups, group_id)
        if row is None:
            raise NotFound(f"there is no membership group with id {group_id}", field="group_id")
        return _group_of(row)

    def get_group(self, group_id: int) -> Group:
        with read_transaction(self._engine) as conn:
            return self._group(conn, group_id)

    def create_group(self, name: str, priority: int, *, now: float) -> Group:
        try:
            with write_transaction(self._engine) as conn:
                taken = conn.execute(
                    select(s.member_groups.c.id).where(s.member_groups.c.name == name)
                ).first()
                if taken is not None:
                    raise self._group_taken(name)
                group_id = _insert(
                    conn, s.member_groups, {"name": name, "priority": priority, "created_at": now}
                )
                return self._group(conn, group_id)
        except IntegrityError as exc:
            raise self._group_taken(name) from exc

    @staticmethod
    def _group_taken(name: str) -> Conflict:
        return Conflict(f"there is already a membership group named {name!r}", field="name")

    def update_group(
        self, group_id: int, *, name: Optional[str] = None, priority: Optional[int] = None
    ) -> Group:
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = name
        if priority is not None:
            values["priority"] = priority
        try:
            with write_transaction(self._engine) as conn:
                group = self._group(conn, group_id)
                if name is not None and name != group.name:
                    taken = conn.execute(
                        select(s.member_groups.c.id).where(s.member_groups.c.name == name)
                    ).first()
                    if taken is not None:
                        raise self._group_taken(name)
                if values:
                    conn.execute(
                        update(s.member_groups).where(s.member_groups.c.id == group_id).values(values)
                    )
                return self._group(conn, group_id)
        except IntegrityError as exc:
            raise self._group_taken(name or "") from exc

    def delete_group(self, group_id: int) -> None:
        """Remove a group, its quotas and its memberships (its members stay, in no group)."""
        with write_transaction(self._engine) as conn:
            self._group(conn, group_id)
            conn.execute(delete(s.quotas).where(s.quotas.c.group_id == group_id))
            conn.execute(delete(s.group_members).where(s.group_members.c.group_id == group_id))
            conn.execute(delete(s.member_groups).where(s.member_groups.c.id == group_id))

    def set_member_group(self, member_id: int, group_id: Optional[int]) -> None:
        """Put a member in a group (out of any other), or in none."""
        with write_transaction(self._engine) as conn:
            self._member(conn, member_id)
            if group_id is not None:
                self._group(conn, group_id)
            conn.execute(delete(s.group_members).where(s.group_members.c.member_id == member_id))
            if group_id is not None:
                conn.execute(insert(s.group_members).values(member_id=member_id, group_id=group_id))

    def memberships(self) -> dict[int, int]:
        """Member id → their group's id, for every member in a group."""
        with read_transaction(self._engine) as conn:
            return {row.member_id: row.group_id for row in conn.execute(select(s.group_members))}

    # -- quotas -----------------------------------------------------------------------------------

    def set_quota(
        self, quota: Quota, *, group_id: Optional[int] = None, member_id: Optional[int] = None
    ) -> None:
        """Set a group's or a member's limits for one period, replacing what it had for that period."""
        key = holder(group_id, member_id)
        limits = quota.limits
        values = {
            "group_id": group_id,
            "member_id": member_id,
            "holder": key,
            "period": quota.period.value,
            "printer_hours": None if limits.printer_hours is None else str(limits.printer_hours),
            "grams": None if limits.grams is None else str(limits.grams),
            "cost_minor": limits.cost_minor,
            "jobs_at_once": limits.jobs_at_once,
        }
        with write_transaction(self._engine) as conn:
            if group_id is not None:
                self._group(conn, group_id)
            if member_id is not None:
                self._member(conn, member_id)
            mine = (s.quotas.c.holder == key) & (s.quotas.c.period == quota.period.value)
            conn.execute(delete(s.quotas).where(mine))
            conn.execute(insert(s.quotas).values(values))

    def remove_quota(
        self, period: Period, *, group_id: Optional[int] = None, member_id: Optional[int] = None
    ) -> bool:
        key = holder(group_id, member_id)
        with write_transaction(self._engine) as conn:
            mine = (s.quotas.c.holder == key) & (s.quotas.c.period == period.value)
            return bool(conn.execute(delete(s.quotas).where(mine)).rowcount)

    def list_quotas(self) -> list[HeldQuota]:
        with read_transaction(self._engine) as conn:
            found = conn.execute(select(s.quotas).order_by(s.quotas.c.holder, s.quotas.c.period)).all()
        return [_quota(row) for row in found]

    # -- lifts and usage --------------------------------------------------------------------------

    def lift_quotas(self, job_id: int, *, actor: str, reason: str, now: float) -> Job:
        """Let one waiting job past every quota; its history records who did it. Twice is a conflict."""
        with write_transaction(self._engine) as conn:
            job = self._job(conn, job_id, lock=True)
            if job.state not in PENDING:
                raise Conflict(
                    f"job {job_id} is {job.state.value}: only a waiting job's quotas can be lifted",
                    key="quota_lift_not_waiting",
                    params={"id": job_id, "state": job.state.value},
                )
            known = conn.execute(
                select(s.quota_lifts.c.job_id).where(s.quota_lifts.c.job_id == job_id)
            ).first()
            if known is not None:
                raise Conflict(f"the quotas of job {job_id} are already lifted", key="quota_already_lifted")
            conn.execute(insert(s.quota_lifts).values(job_id=job_id, actor=actor, at=now))
            self._record_event(conn, job_id, now, job.state, job.state, actor, reason, {"quota_lifted": True})
            return self._job(conn, job_id)

    def lifted_jobs(self, job_ids: Optional[Collection[int]] = None) -> set[int]:
        """Which jobs (of ``job_ids``, or of those still waiting) a manager lifted the quotas for."""
        query = select(s.quota_lifts.c.job_id)
        if job_ids is not None:
            query = query.where(s.quota_lifts.c.job_id.in_(sorted(set(job_ids))))
        else:
            waiting = [state.value for state in PENDING]
            query = query.join(s.jobs, s.jobs.c.id == s.quota_lifts.c.job_id).where(
                s.jobs.c.state.in_(waiting)
            )
        with read_transaction(self._engine) as conn:
            return set(conn.execute(query).scalars())

    def usage_rows(self, member_ids: Collection[int], since: float) -> list[UsageRow]:
        """Jobs of ``member_ids`` that started at or after ``since``, or hold a printer now."""
        jobs = s.jobs.c
        query = (
            select(
                jobs.id,
                jobs.member_id,
                jobs.state,
                jobs.started_at,
                jobs.finished_at,
                jobs.analysis,
                jobs.material,
                jobs.printer_id,
                s.charges.c.total_minor,
            )
            .select_from(s.jobs.outerjoin(s.charges, s.charges.c.job_id == jobs.id))
            .where(jobs.member_id.in_(sorted(set(member_ids))))
            .where((jobs.started_at >= since) | jobs.state.in_([state.value for state in ACTIVE]))
            .order_by(jobs.id)
        )
        with read_transaction(self._engine) as conn:
            found = conn.execute(query).all() if member_ids else []
        return [
            UsageRow(
                row.member_id,
                row.id,
                JobState(row.state),
                row.started_at,
                row.finished_at,
                json.loads(row.analysis),
                None if row.total_minor is None else int(row.total_minor),
                row.material,
                row.printer_id,
            )
            for row in found
        ]
