"""Listings a page at a time: bounded answers for tables that grow for as long as the lab runs.

Pages are in id order and continue after the last id seen (keyset pagination): a job submitted or
changed meanwhile never shifts a page, and each page costs one index range scan however deep it is.
"""

from __future__ import annotations

from typing import Optional

from sqlalchemy import select
from sqlalchemy.engine import Engine

from ..models import JobFilter, JobPage
from ..states import JobState
from . import rows
from . import schema as s
from .engine import read_transaction


def job_page(engine: Engine, where: JobFilter, *, after: Optional[int] = None, limit: int = 100) -> JobPage:
    """Up to ``limit`` jobs matching ``where`` with an id above ``after``, oldest first."""
    if limit < 1:
        raise ValueError("a page holds at least one job")
    jobs = s.jobs.c
    query = select(s.jobs).order_by(jobs.id).limit(limit + 1)  # one more: is there a next page?
    if after is not None:
        query = query.where(jobs.id > after)
    if where.states is not None:
        query = query.where(jobs.state.in_(sorted(JobState(state).value for state in where.states)))
    if where.member_id is not None:
        query = query.where(jobs.member_id == where.member_id)
    if where.since is not None:
        query = query.where(jobs.submitted_at >= where.since)
    if where.until is not None:
        query = query.where(jobs.submitted_at < where.until)
    with read_transaction(engine) as conn:
        found = conn.execute(query).all()
    page = [rows.job(row) for row in found[:limit]]
    return JobPage(jobs=page, next_after=page[-1].id if len(found) > limit else None)
