"""Membership groups and quotas: who belongs where, the limits per period, what each member used,
and a manager's lift of the limits for one job. The scheduler's adapter reads :meth:`Quotas.book`."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable, Optional

from ..economy.periods import Period, bounds, check_period, renewal_day
from ..economy.pricing import grams_of
from ..economy.quotas import (
    Allowance,
    Cap,
    Limits,
    Quota,
    Used,
    allowance,
    check_priority,
    effective,
    make_quota,
)
from ..errors import Invalid
from ..models import Job, Member, Role
from ..states import ACTIVE, JobState
from ..store.economy import Group, HeldQuota, UsageRow
from .base import Context, actor_of, require_manager
from .pricing import Pricing, job_seconds

GROUP_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


def check_group_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not GROUP_NAME_RE.match(value.strip()):
        raise Invalid(
            f"{field} must be 1-64 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit",
            field=field,
        )
    return value.strip()


@dataclass(frozen=True)
class Book:
    """What the scheduler's pass needs of quotas and groups, read once per pass."""

    #: Member id -> their caps, for every member with at least one limit.
    allowances: dict[int, Allowance]
    #: Member id -> (group name, group priority), for members in a group.
    groups: dict[int, tuple[str, int]]
    #: Waiting jobs a manager lifted the limits for.
    lifted: frozenset[int]
    #: Members with a cost cap (their jobs' costs are estimated for the pass).
    cost_limited: frozenset[int]


def used_since(
    rows: Collection[UsageRow], start: float, now: float, cost_of: Callable[[UsageRow], int]
) -> Used:
    """What jobs that started since ``start`` (or hold a printer now) used: a job still on a printer
    counts by its estimate, an ended one by the time it ran and the grams of what it printed."""
    seconds = grams = 0.0
    cost = 0
    for row in rows:
        active = row.state in ACTIVE
        if not active and (row.started_at is None or row.started_at < start):
            continue
        if active and row.started_at is not None and row.started_at < start:
            continue  # counted in the period it started in
        estimate = float(job_seconds(row.analysis) or 0)
        weight = float(grams_of(row.analysis.get("filament_weight_g")))
        if active:
            seconds += max(estimate, now - row.started_at if row.started_at is not None else 0.0)
            grams += weight
            cost += cost_of(row)
            continue
        assert row.started_at is not None
        ran = max(0.0, (row.finished_at or now) - row.started_at)
        seconds += ran
        share = 1.0 if row.state is JobState.DONE or estimate <= 0 else min(1.0, ran / estimate)
        grams += weight * share
        cost += row.charged_minor or 0
    return Used(seconds, grams, cost)


class Quotas:
    """Groups and quotas are public (every rule is); changing them and lifting limits is for managers."""

    def __init__(self, ctx: Context, pricing: Pricing) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.pricing = pricing

    # -- groups -----------------------------------------------------------------------------------

    def groups(self, actor: Member) -> list[Group]:
        del actor
        return self.store.list_groups()

    def create_group(self, actor: Member, name: Any, priority: Any = 0) -> Group:
        require_manager(actor)
        group = self.store.create_group(
            check_group_name(name), check_priority(priority), now=self.ctx.clock()
        )
        return group

    def update_group(self, actor: Member, group_id: int, *, name: Any = None, priority: Any = None) -> Group:
        require_manager(actor)
        group = self.store.update_group(
            group_id,
            name=None if name is None else check_group_name(name),
            priority=None if priority is None else check_priority(priority),
        )
        self.ctx.queue_changed()
        return group

    def delete_group(self, actor: Member, group_id: int) -> None:
        require_manager(actor)
        self.store.delete_group(group_id)
        self.ctx.queue_changed()

    def set_member_group(self, actor: Member, member_id: int, group_id: Optional[int]) -> None:
        require_manager(actor)
        self.store.set_member_group(member_id, group_id)
        self.ctx.queue_changed()
        self.ctx.work_available()

    def get_group(self, actor: Member, group_id: int) -> Group:
        del actor
        return self.store.get_group(group_id)

    def memberships(self, actor: Member) -> dict[int, int]:
        """Member id -> group id, for every member in a group (managers)."""
        require_manager(actor)
        return self.store.memberships()

    def is_lifted(self, actor: Member, job_id: int) -> bool:
        """Whether a manager lifted the quotas of a job (whoever may see the job: the caller checked)."""
        del actor
        return job_id in self.store.lifted_jobs([job_id])

    def group_names_of(self, jobs: Iterable[Job]) -> dict[int, str]:
        """The group each job's member belongs to now, by job id (the statistics' group column)."""
        memberships = self.store.memberships()
        names = {group.id: group.name for group in self.store.list_groups()}
        found: dict[int, str] = {}
        for job in jobs:
            group_id = memberships.get(job.member_id)
            if group_id is not None and group_id in names:
                found[job.id] = names[group_id]
        return found

    def group_of(self, member_id: int) -> Optional[Group]:
        group_id = self.store.memberships().get(member_id)
        return None if group_id is None else self.store.get_group(group_id)

    # -- quotas -----------------------------------------------------------------------------------

    def quotas(self, actor: Member) -> list[HeldQuota]:
        """Every group's quotas, and members' own: a member sees only their own among the latter."""
        return [
            q
            for q in self.store.list_quotas()
            if q.member_id is None or q.member_id == actor.id or actor.role is Role.MANAGER
        ]

    def set_quota(
        self, actor: Member, data: Any, *, group_id: Optional[int] = None, member_id: Optional[int] = None
    ) -> Quota:
        """Set a group's or a member's limits for one period (``{"period": "month", "grams": "500"}``)."""
        require_manager(actor)
        quota = make_quota(data, self.ctx.lab_settings().currency)
        self.store.set_quota(quota, group_id=group_id, member_id=member_id)
        self.ctx.queue_changed()
        self.ctx.work_available()
        return quota

    def remove_quota(
        self, actor: Member, period: Any, *, group_id: Optional[int] = None, member_id: Optional[int] = None
    ) -> bool:
        require_manager(actor)
        removed = self.store.remove_quota(check_period(period), group_id=group_id, member_id=member_id)
        self.ctx.queue_changed()
        self.ctx.work_available()
        return removed

    def lift(self, actor: Member, job_id: int) -> Job:
        """Let one waiting job past every quota of its member (managers); its history records who."""
        require_manager(actor)
        job = self.store.lift_quotas(
            job_id,
            actor=actor_of(actor),
            reason=f"quotas lifted for this job by {actor.name}",
            now=self.ctx.clock(),
        )
        self.ctx.job_changed(job)
        self.ctx.work_available()
        return job

    # -- what members used ------------------------------------------------------------------------

    def limits_of(self, member_id: int) -> dict[Period, Limits]:
        group_id = self.store.memberships().get(member_id)
        return self._limits(self.store.list_quotas(), group_id, member_id)

    @staticmethod
    def _limits(held: Collection[HeldQuota], group_id: Optional[int], member_id: int) -> dict[Period, Limits]:
        group = [q.quota for q in held if q.group_id is not None and q.group_id == group_id]
        own = [q.quota for q in held if q.member_id == member_id]
        return effective(group, own)

    def standing(self, actor: Member, member_id: int) -> list[Cap]:
        """A member's caps with what they used (themselves, or managers)."""
        if member_id != actor.id:
            require_manager(actor)
        limits = self.limits_of(member_id)
        if not limits:
            return []
        return list(self._allowances({member_id: limits}, self.ctx.clock())[member_id].caps)

    def _allowances(self, limits: Mapping[int, Mapping[Period, Limits]], now: float) -> dict[int, Allowance]:
        time_zone = self.ctx.lab_settings().time_zone
        periods = {period for each in limits.values() for period in each}
        starts = {period: bounds(period, now, time_zone)[0] for period in periods}
        renews: dict[Period, date] = {period: renewal_day(period, now, time_zone) for period in periods}
        rows = self.store.usage_rows(list(limits), since=min(starts.values())) if starts else []
        by_member: dict[int, list[UsageRow]] = {}
        for row in rows:
            by_member.setdefault(row.member_id, []).append(row)
        pricing_cost = self._cost_of()
        result = {}
        for member_id, mine in limits.items():
            used = {
                period: used_since(by_member.get(member_id, []), starts[period], now, pricing_cost)
                for period in mine
            }
            active = sum(1 for row in by_member.get(member_id, []) if row.state in ACTIVE)
            result[member_id] = allowance(mine, used, active, renews)
        return result

    def _cost_of(self) -> Callable[[UsageRow], int]:
        """The estimated cost of a job still on a printer (its charge is fixed when it ends)."""
        estimate = self.pricing.estimator()

        def cost(row: UsageRow) -> int:
            return estimate(row.analysis, row.material, row.printer_id).total_minor

        return cost

    def book(self, member_ids: Collection[int]) -> Book:
        """Quotas, groups and lifts of the members with waiting jobs, for one scheduling pass."""
        now = self.ctx.clock()
        memberships = self.store.memberships()
        groups = {g.id: g for g in self.store.list_groups()}
        held = self.store.list_quotas()
        wanted = set(member_ids)
        limits = {}
        for member_id in wanted:
            mine = self._limits(held, memberships.get(member_id), member_id)
            if mine:
                limits[member_id] = mine
        allowances = self._allowances(limits, now) if limits else {}
        in_groups = {
            member_id: (groups[group_id].name, groups[group_id].priority)
            for member_id, group_id in memberships.items()
            if member_id in wanted and group_id in groups
        }
        cost_limited = frozenset(
            m for m, each in limits.items() if any(cap.cost_minor is not None for cap in each.values())
        )
        lifted = frozenset(self.store.lifted_jobs()) if allowances else frozenset()
        return Book(allowances, in_groups, lifted, cost_limited)
