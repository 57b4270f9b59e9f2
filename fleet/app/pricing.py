"""The lab's prices and ledger: the price list (public), estimates, charges fixed when a job ends,
each member's ledger and a month of everyone's as CSV (managers)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any, Optional

from ..economy.ledger import LedgerEntry, ledger_csv
from ..economy.money import major
from ..economy.periods import check_month, month_bounds
from ..economy.pricing import Charge, JobFacts, PriceList, estimate, grams_of, seconds_of, settle
from ..models import Job, Member, Page, Role
from ..states import JobState
from ..store.jobs import JobStep
from .base import Context, actor_of, require_manager


def job_seconds(analysis: Mapping[str, Any]) -> Any:
    return analysis.get("estimated_time_s") or analysis.get("own_time_estimate_s") or 0


def facts_of(
    analysis: Mapping[str, Any], material: Optional[str], printer_id: Optional[str] = None
) -> JobFacts:
    """What a charge is computed from: the analysis's grams and time, the material asked (or the file's)."""
    return JobFacts(
        material=material or analysis.get("material"),
        grams=grams_of(analysis.get("filament_weight_g")),
        seconds=seconds_of(job_seconds(analysis)),
        printer_id=printer_id,
    )


class Pricing:
    """Prices are public to members; changing them and reading others' ledgers is for managers."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store

    # -- the price list ---------------------------------------------------------------------------

    def current(self) -> tuple[PriceList, Optional[int]]:
        """The price list in force and its id (an empty list, charging nothing, before one is set)."""
        record = self.store.price_list()
        if record is None:
            return PriceList(), None
        return PriceList.from_dict(record.body), record.id

    def price_list(self, actor: Member) -> tuple[PriceList, Optional[int], str]:
        """The price list, its id and the lab's currency: every member may read them."""
        del actor  # every rule is public
        prices, list_id = self.current()
        return prices, list_id, self.ctx.lab_settings().currency

    def set_price_list(self, actor: Member, data: Any) -> tuple[PriceList, int]:
        """Replace the price list (managers); every entry is checked first, so a refusal changes nothing."""
        require_manager(actor)
        prices = PriceList.from_dict(data)
        record = self.store.add_price_list(prices.to_dict(), actor=actor_of(actor), now=self.ctx.clock())
        self.ctx.queue_changed()  # cost quotas may hold other jobs now
        return prices, record.id

    # -- estimates and charges --------------------------------------------------------------------

    def estimate(
        self, analysis: Mapping[str, Any], material: Optional[str], printer_id: Optional[str] = None
    ) -> Charge:
        """What a print of this analysis should cost if it prints to the end, at today's prices."""
        prices, _ = self.current()
        return estimate(prices, facts_of(analysis, material, printer_id), self.ctx.lab_settings().currency)

    def estimator(self) -> Callable[[Mapping[str, Any], Optional[str], Optional[str]], Charge]:
        """:meth:`estimate` with today's prices read once, for many jobs (the scheduler's pass)."""
        prices, _ = self.current()
        currency = self.ctx.lab_settings().currency

        def cost(
            analysis: Mapping[str, Any], material: Optional[str], printer_id: Optional[str] = None
        ) -> Charge:
            return estimate(prices, facts_of(analysis, material, printer_id), currency)

        return cost

    def job_estimate(self, actor: Member, job: Job) -> Charge:
        """A job's estimated cost (whoever may see the job: the caller checked)."""
        del actor
        return self.estimate(job.analysis, job.material, job.printer_id)

    def charge_step(self, printed_share: Optional[float] = None) -> JobStep:
        """The store step that fixes the charge of a job as it ends, at today's prices (see
        :meth:`fleet.store.economy.EconomyRecords.charge_step`).

        A job that never started costs nothing. A done job pays its estimate on the printer it used
        (what the member was shown); a failed or cancelled one follows the lab's rule, with
        ``printed_share`` (0 to 1, from the printer's progress) or else the share of its estimated
        time it ran.
        """
        prices, list_id = self.current()
        currency = self.ctx.lab_settings().currency

        def pricer(job: Job) -> Optional[tuple[Charge, Optional[int]]]:
            if job.started_at is None:
                return None
            facts = facts_of(job.analysis, job.material, job.printer_id)
            if job.state is JobState.DONE:
                return settle(prices, facts, currency, finished=True), list_id
            share = printed_share
            if share is None:
                ran = (job.finished_at or job.updated_at) - job.started_at
                share = ran / float(facts.seconds) if facts.seconds > 0 else 1.0
            exact = Decimal(str(min(1.0, max(0.0, share))))
            return settle(prices, facts, currency, finished=False, printed_share=exact), list_id

        return self.store.charge_step(pricer)

    # -- the ledger -------------------------------------------------------------------------------

    def ledger(
        self,
        actor: Member,
        *,
        member_id: Optional[int] = None,
        month: Optional[str] = None,
        after: Optional[int] = None,
        limit: int = 100,
    ) -> Page[LedgerEntry, int]:
        """A page of charges: a member's own, or (managers) anyone's or everyone's; optionally one month."""
        if member_id != actor.id:
            require_manager(actor)
        since = until = None
        if month is not None:
            year, number = check_month(month)
            since, until = month_bounds(year, number, self.ctx.lab_settings().time_zone)
        return self.store.ledger_page(member_id=member_id, since=since, until=until, after=after, limit=limit)

    def month_csv(self, actor: Member, month: str) -> str:
        """Every charge fixed in one month of the lab's calendar, one line a row (managers)."""
        require_manager(actor)
        year, number = check_month(month)
        lab = self.ctx.lab_settings()
        since, until = month_bounds(year, number, lab.time_zone)
        page = self.store.ledger_page(since=since, until=until, limit=None)
        names = {m.id: m.name for m in self.store.list_members()}
        return ledger_csv(page.items, names, lab.time_zone)

    def costs_of(self, jobs: Iterable[Job]) -> dict[int, Decimal]:
        """Each charged job's total in the lab's major unit, by job id (the statistics' cost column;
        the statistics decide who sees whose)."""
        found = self.store.charges_by_job([job.id for job in jobs])
        return {job_id: major(entry.total_minor, entry.charge.currency) for job_id, entry in found.items()}

    def charges_by_job(self, actor: Member, job_ids: Collection[int]) -> dict[int, LedgerEntry]:
        """The charge of each job that has one (statistics read costs per job through this); a member
        sees only their own jobs' charges."""
        found = self.store.charges_by_job(job_ids)
        if actor.role is Role.MANAGER:
            return found
        return {job_id: entry for job_id, entry in found.items() if entry.member_id == actor.id}
