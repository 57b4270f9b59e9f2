"""Which queued job goes to which idle printer, and why every other job is still waiting.

Pure: no I/O, no clock (``now`` is a parameter) and no process-wide state. One pass puts the queue in
order, walks that order over the printers' expected availability, and dispatches each job that
reaches an idle printer. Walking the whole order gives every waiting job its place and an estimated
start, from the same rules.

Where to look:

- :mod:`.fairness`: the order itself, :func:`~.fairness.queue_order` (effective priority with aging,
  then each member's recent usage, then age), and the two figures it weighs.
- :mod:`.matching`: which printers could ever print which jobs (capability classes, :func:`fits`).
- :mod:`.planning`: the pass, :func:`plan`: dispatch and the estimates.
- :mod:`.explain` and :mod:`.wording`: the explanations every member reads, built when read.
- :mod:`.model`: the values going in and out.

Quotas and membership groups: a group's priority adds to its jobs' effective priority
(:func:`~.fairness.effective_priority`), and the pass asks :class:`fleet.economy.quotas.QuotaGate`
about each job in queue order; a job its member's quota holds takes no printer, no place and no
estimate, and its explanation says why (:data:`~.model.WaitReason.QUOTA`, :attr:`~.model.Plan.holds`).
"""

from __future__ import annotations

from .explain import Explanation
from .fairness import decayed_usage, effective_priority, queue_order
from .matching import fits
from .model import JobInfo, Plan, PrinterInfo, SchedulerParams, WaitReason
from .planning import plan

__all__ = [
    "Explanation",
    "JobInfo",
    "Plan",
    "PrinterInfo",
    "SchedulerParams",
    "WaitReason",
    "decayed_usage",
    "effective_priority",
    "fits",
    "plan",
    "queue_order",
]
