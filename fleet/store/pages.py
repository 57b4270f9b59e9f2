"""Listings a page at a time: bounded answers for tables that grow for as long as the lab runs.

Pages are in key order (a job's, member's or event's id; a printer's id text) and continue after
the last key seen (keyset pagination): a row added or changed meanwhile never shifts a page, and
each page costs one index range scan however deep it is.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

from sqlalchemy import ColumnElement, Select, select

from ..models import Job, JobEvent, JobFilter, JobPage, Member, Page, Printer
from ..states import JobState
from . import rows
from . import schema as s
from .base import StoreBase
from .engine import read_transaction

T = TypeVar("T")
K = TypeVar("K", int, str)


class PageRecords(StoreBase):
    """Every listing the API pages through, oldest (lowest key) first."""

    def job_page(self, where: JobFilter, *, after: Optional[int] = None, limit: int = 100) -> JobPage:
        """Up to ``limit`` jobs matching ``where`` with an id above ``after``."""
        jobs = s.jobs.c
        conditions: list[ColumnElement[bool]] = []
        if where.states is not None:
            conditions.append(jobs.state.in_(sorted(JobState(state).value for state in where.states)))
        if where.member_id is not None:
            conditions.append(jobs.member_id == where.member_id)
        if where.since is not None:
            conditions.append(jobs.submitted_at >= where.since)
        if where.until is not None:
            conditions.append(jobs.submitted_at < where.until)
        page: Page[Job, int] = self._page(select(s.jobs).where(*conditions), jobs.id, rows.job, after, limit)
        return JobPage(jobs=page.items, next_after=page.next_after)

    def printer_page(self, *, after: Optional[str] = None, limit: int = 100) -> Page[Printer, str]:
        """Up to ``limit`` printers whose id sorts after ``after``."""
        return self._page(select(s.printers), s.printers.c.id, rows.printer, after, limit)

    def member_page(self, *, after: Optional[int] = None, limit: int = 100) -> Page[Member, int]:
        """Up to ``limit`` members with an id above ``after``."""
        return self._page(select(s.members), s.members.c.id, rows.member, after, limit)

    def event_page(
        self, job_id: int, *, after: Optional[int] = None, limit: int = 100
    ) -> Page[JobEvent, int]:
        """Up to ``limit`` steps of a job's history after the event ``after``; NotFound for no such job."""
        query = select(s.job_events).where(s.job_events.c.job_id == job_id)
        return self._page(query, s.job_events.c.id, rows.event, after, limit, job_id=job_id)

    def _page(
        self,
        query: Select[Any],
        key: Any,
        row_to: Callable[[Any], T],
        after: Optional[K],
        limit: int,
        *,
        job_id: Optional[int] = None,
    ) -> Page[T, K]:
        """One page of ``query`` in ``key`` order; ``job_id`` must name a job (in the same transaction)."""
        if limit < 1:
            raise ValueError("a page holds at least one row")
        query = query.order_by(key).limit(limit + 1)  # one more: is there a next page?
        if after is not None:
            query = query.where(key > after)
        with read_transaction(self._engine) as conn:
            if job_id is not None:
                self._job(conn, job_id)
            found = conn.execute(query).all()
        items = [row_to(row) for row in found[:limit]]
        last: Optional[K] = getattr(found[limit - 1], key.name) if len(found) > limit else None
        return Page(items=items, next_after=last)
