"""Why every job waits (or that it starts now): the explanations each member reads.

A pass explains 20,000 jobs, and most readers need the reasons and positions of all but the wording
of few, so explanations are built when read and each message is worded when first read
(:mod:`.wording` holds the sentences).
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, Sequence, ValuesView
from dataclasses import replace
from itertools import repeat
from operator import add, attrgetter, itemgetter
from typing import TYPE_CHECKING

from ..economy.wording import group_words, hold_words
from ..states import DISPATCHABLE, JobState
from . import wording
from .matching import fits
from .model import ID, JobInfo, PrinterInfo, WaitReason

if TYPE_CHECKING:
    from .planning import Pass

#: A box's six sides, as one value: equal boxes give equal keys without hashing a Box (Python code).
_SIDES = attrgetter("min_x", "min_y", "min_z", "max_x", "max_y", "max_z")


def _needs_key(job: JobInfo) -> tuple[object, ...]:
    """What a job asks of a printer, as one value: jobs that ask the same are worded once."""
    bounds = job.bounds
    return (
        None if bounds is None else _SIDES(bounds),
        job.nozzle_diameter,
        job.material,
        job.heats_bed,
        job.heats_chamber,
        job.tools,
        job.colour,
        job.grams,
    )


class Explanation(tuple):  # type: ignore[type-arg]
    """Why one job waits (or that it starts now): immutable, compared and hashed by value.

    ``message`` may be worded only when first read: a pass explains 20,000 jobs, and most readers need
    the reasons and positions of all but the wording of few. A tuple underneath, as that is the
    cheapest immutable object to build; read it by field name.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        job_id: int
        #: 1-based place in the queue order; None for jobs not in the queue.
        position: int | None
        reason: WaitReason
        estimated_start: float | None
        compatible_printers: tuple[str, ...]
    else:
        job_id = property(itemgetter(0))
        position = property(itemgetter(1))
        reason = property(itemgetter(2))
        estimated_start = property(itemgetter(4))
        compatible_printers = property(itemgetter(5))

    def __new__(
        cls,
        job_id: int,
        position: int | None,
        reason: WaitReason,
        message: str,
        estimated_start: float | None,
        compatible_printers: tuple[str, ...],
    ) -> Explanation:
        return _new_tuple(cls, (job_id, position, reason, message, estimated_start, compatible_printers))

    @property
    def message(self) -> str:
        message: str | Explanations = self[3]
        return message if isinstance(message, str) else message._message_of(self)

    def _fields(self) -> tuple[object, ...]:
        return (
            self.job_id,
            self.position,
            self.reason,
            self.message,
            self.estimated_start,
            self.compatible_printers,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Explanation):
            return NotImplemented
        return self._fields() == other._fields()

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, Explanation):
            return NotImplemented
        return self._fields() != other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"Explanation(job_id={self.job_id!r}, position={self.position!r}, reason={self.reason!r}, "
            f"message={self.message!r}, estimated_start={self.estimated_start!r}, "
            f"compatible_printers={self.compatible_printers!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (Explanation, self._fields())


_new_tuple = tuple.__new__


class Explanations(Mapping[int, Explanation]):
    """Explanations built when asked for: a member's page reads a few, the dispatch loop none."""

    def __init__(self, run: Pass, jobs: Sequence[JobInfo]) -> None:
        self._run = run
        self._jobs = jobs
        self._start: list[float | None] | None = None
        self._by_compat: dict[int, tuple[list[int], tuple[str, ...], int]] = {}
        self._why_not: dict[tuple[object, ...], tuple[WaitReason, str]] = {}
        self._busy_of: dict[int, str] = {}
        self._needs_of: dict[tuple[object, ...], str] = {}
        self._idle_of: dict[tuple[object, ...], str] = {}
        self._idle_printers: list[PrinterInfo] | None = None
        self._built: dict[int, Explanation] | None = None
        self._messages: dict[int, str] = {}

    def _ready(self) -> list[float | None]:
        """Index the jobs and walk the queue for the estimates, once."""
        if self._start is None:
            run = self._run
            order = run.order
            #: Job index -> 1-based place in the order (the order's inverse, sorted in C); a job a quota
            #: holds has none, and the jobs behind it move up.
            held = run.held
            if held:
                lined = [i for i in order if i not in held]
                self._position: list[int | None] = [None] * len(order)
                for place, i in enumerate(lined, 1):
                    self._position[i] = place
            else:
                self._position = list(map(add, sorted(range(len(order)), key=order.__getitem__), repeat(1)))
            self._index: dict[int, int] = dict(zip(run.ids, range(len(run.ids))))
            others = [
                j
                for j in self._jobs
                if j.state in (JobState.AWAITING_APPROVAL, JobState.SUBMITTED) and j.id not in self._index
            ]
            self._others: dict[int, tuple[JobInfo, int]] = dict(
                zip(map(ID, others), zip(others, run.fleet.compat_all(others)))
            )
            self._ids = tuple(map(run.ids.__getitem__, order)) + tuple(sorted(self._others))
            self._start = run.walk()
        return self._start

    def __len__(self) -> int:
        self._ready()
        return len(self._ids)

    def __iter__(self) -> Iterator[int]:
        self._ready()
        return iter(self._ids)

    def __contains__(self, job_id: object) -> bool:
        self._ready()
        return job_id in self._index or job_id in self._others

    def __getitem__(self, job_id: int) -> Explanation:
        if self._built is not None:
            return self._built[job_id]
        start = self._ready()
        index = self._index.get(job_id)
        if index is not None:
            return self._queued(index, start[index])
        other = self._others.get(job_id)
        if other is None:
            raise KeyError(job_id)
        return self._not_queued(*other)

    def __repr__(self) -> str:
        return f"<explanations of {len(self)} jobs>"

    def _queued(self, i: int, start: float | None) -> Explanation:
        """The reason now; the message when it is read (see :meth:`_wording`)."""
        run = self._run
        compatible, free = self._printers(run.compat[i])[1:]
        if i in run.assigned:
            reason = WaitReason.NEXT
        elif i in run.held:
            reason = WaitReason.QUOTA
        elif not compatible:
            reason = self._incompatible(run.queued[i])[0]
        elif i in run.short:
            reason = WaitReason.LOW_SPOOL
        elif start is None:
            reason = WaitReason.PRINTERS_UNAVAILABLE
        elif free and self._too_long(i):
            reason, start = WaitReason.NO_PRINTER_FREE, None
        elif free:
            reason = WaitReason.FAIR_SHARE
        else:
            reason = WaitReason.NO_PRINTER_FREE
        return _new_tuple(Explanation, (run.ids[i], self._position[i], reason, self, start, compatible))

    def _late(self, i: int) -> list[int]:
        """The free compatible printers whose lending window ends before job index ``i`` would be done."""
        run = self._run
        if not run.closing:
            return []
        fleet = run.fleet
        return [
            p
            for p in self._printers(run.compat[i])[0]
            if p in run.closing
            and p not in run.closed
            and fleet.printers[p].state in DISPATCHABLE
            and not run.in_time(i, p)
        ]

    def _too_long(self, i: int) -> bool:
        """Every free compatible printer is lent until a window ends before job index ``i`` would be done."""
        late = self._late(i)
        return bool(late) and len(late) == self._printers(self._run.compat[i])[2]

    def _all(self) -> dict[int, Explanation]:
        """Every explanation, built in one go (the /queue page reads them all): the same as reading each.

        Column by column over the queue order, in C-level map() calls; only jobs without an estimate
        (or dispatched now) are looked at one by one.
        """
        if self._built is None:
            start = self._ready()
            run = self._run
            order = run.order
            compat = list(map(run.compat.__getitem__, order))
            at = list(map(start.__getitem__, order))
            compatible: dict[int, tuple[str, ...]] = {}
            waits: dict[int, WaitReason] = {}
            for c in set(compat):
                compatible[c], free = self._printers(c)[1:]
                waits[c] = WaitReason.FAIR_SHARE if free else WaitReason.NO_PRINTER_FREE
            reasons = list(map(waits.__getitem__, compat))
            printers = list(map(compatible.__getitem__, compat))
            short = run.short
            for place in [place for place, when in enumerate(at) if when is None]:
                if order[place] in short and printers[place]:
                    reasons[place] = WaitReason.LOW_SPOOL
                elif printers[place]:
                    reasons[place] = WaitReason.PRINTERS_UNAVAILABLE
                else:
                    reasons[place] = self._incompatible(run.queued[order[place]])[0]
            places: Sequence[int | None] = range(1, len(order) + 1)
            if run.closing:
                # A job that would run past the end of its only printers' lending windows waits for them.
                for place, reason in enumerate(reasons):
                    if reason is WaitReason.FAIR_SHARE and self._too_long(order[place]):
                        reasons[place], at[place] = WaitReason.NO_PRINTER_FREE, None
            if run.held:
                # Held jobs have no place, so a place no longer gives the slot in the order.
                slot = dict(zip(order, range(len(order))))
                for i in run.held:
                    reasons[slot[i]] = WaitReason.QUOTA
                places = list(map(self._position.__getitem__, order))
                for i in run.assigned:
                    reasons[slot[i]] = WaitReason.NEXT
            else:
                for i in run.assigned:
                    reasons[self._position[i] - 1] = WaitReason.NEXT  # type: ignore[operator]
            ids = self._ids[: len(order)]
            columns = zip(ids, places, reasons, repeat(self), at, printers)
            built = dict(zip(ids, map(_new_tuple, repeat(Explanation), columns)))
            for job_id in self._ids[len(order) :]:
                built[job_id] = self._not_queued(*self._others[job_id])
            self._built = built
        return self._built

    def values(self) -> ValuesView[Explanation]:
        return self._all().values()

    def items(self) -> ItemsView[int, Explanation]:
        return self._all().items()

    def _message_of(self, explanation: Explanation) -> str:
        """The message of a queued job's explanation, worded once."""
        message = self._messages.get(explanation.job_id)
        if message is None:
            message = self._messages[explanation.job_id] = self._wording(explanation)
        return message

    def _wording(self, explanation: Explanation) -> str:
        run = self._run
        fleet = run.fleet
        i = self._index[explanation.job_id]
        reason = explanation.reason
        job = run.queued[i]
        printer_indexes, compatible, free = self._printers(run.compat[i])
        if reason is WaitReason.QUOTA:
            words = hold_words(run.held[i], "en", run.currency)
            return f"{words[0].upper()}{words[1:]}."
        position = self._position[i]
        assert position is not None
        head = f"{wording.ordinal(position)} in line"
        if reason is WaitReason.NEXT:
            return f"{head}; starting now on {fleet.printers[run.assigned[i]].id}."
        if not compatible:
            return f"{head}; {self._incompatible(job)[1]}."
        if reason is WaitReason.NO_PRINTER_FREE and free and self._too_long(i):
            late = self._late(i)[0]
            return f"{head}; {wording.runs_past(fleet.printers[late], run.closing[late], run.seconds[i])}."
        if reason is WaitReason.LOW_SPOOL:
            return f"{head}; {wording.loaded(job, [fleet.printers[p] for p in printer_indexes])[1]}."
        message = self._lent_note(
            self._why_waiting(explanation, head, job, printer_indexes, compatible, free), printer_indexes
        )
        if reason is WaitReason.NO_PRINTER_FREE:
            message = self._idle_note(message, job)
        return message

    def _idle_note(self, message: str, job: JobInfo) -> str:
        """A message, with why the idle printers that could otherwise print the job do not take it:
        what is loaded on them (material, colour, grams left)."""
        if job.material is None and job.colour is None and not job.grams:
            return message
        key = (_needs_key(job), job.member_id)
        note = self._idle_of.get(key)
        if note is None:
            fleet = self._run.fleet
            loose = replace(job, material=None, colour=None, grams=0.0)
            idle = [
                p
                for p in self._idle()
                if fits(loose, p, fleet.grants, fleet.params) and not fits(job, p, fleet.grants, fleet.params)
            ]
            note = self._idle_of[key] = wording.loaded(job, idle, idle=True)[1] if idle else ""
        return f"{message[:-1]}; {note}." if note else message

    def _idle(self) -> list[PrinterInfo]:
        """The printers that take work now (idle, and lent now if lent), once."""
        if self._idle_printers is None:
            run = self._run
            self._idle_printers = [
                p
                for index, p in enumerate(run.fleet.printers)
                if p.state in DISPATCHABLE and index not in run.closed
            ]
        return self._idle_printers

    def _lent_note(self, message: str, printer_indexes: list[int]) -> str:
        """A message, with why the lent printers among ``printer_indexes`` take no work now (at most two)."""
        closed = self._run.closed
        notes = [
            wording.lent(self._run.fleet.printers[p], closed[p]) for p in printer_indexes if p in closed
        ][:2]
        if not notes:
            return message
        return f"{message[:-1]}; {'; '.join(notes)}."

    def _why_waiting(
        self,
        explanation: Explanation,
        head: str,
        job: JobInfo,
        printer_indexes: list[int],
        compatible: tuple[str, ...],
        free: int,
    ) -> str:
        run = self._run
        fleet = run.fleet
        i = self._index[explanation.job_id]
        reason = explanation.reason
        start = explanation.estimated_start
        if reason is WaitReason.PRINTERS_UNAVAILABLE:
            return (
                f"{head}; {wording.count(len(compatible), 'printer')} could print it ({self._needs(job)}), "
                f"but {'it is' if len(compatible) == 1 else 'none is'} working now "
                f"({wording.states(fleet, printer_indexes)}); no estimate until one is back."
            )
        group = f"; {group_words(job.group, job.group_priority)}" if job.group and job.group_priority else ""
        if reason is WaitReason.FAIR_SHARE:
            return (
                f"{head}; {'the compatible printer' if free == 1 else f'the {free} compatible printers'} "
                f"free now {'goes' if free == 1 else 'go'} to jobs ahead in line "
                f"(members who printed less recently go first){group}; {wording.expected(start, run.now)}."
            )
        return (
            f"{head}; waiting for a free printer {self._needs(job)}: "
            f"{self._busy(run.compat[i])}{group}; {wording.expected(start, run.now)}."
        )

    def _needs(self, job: JobInfo) -> str:
        key = _needs_key(job)
        known = self._needs_of.get(key)
        if known is None:
            known = self._needs_of[key] = wording.needs(job)
        return known

    def _busy(self, compat: int) -> str:
        known = self._busy_of.get(compat)
        if known is None:
            run = self._run
            known = self._busy_of[compat] = wording.busy(
                run.fleet, self._printers(compat)[0], run.available, run.closed
            )
        return known

    def _incompatible(self, job: JobInfo) -> tuple[WaitReason, str]:
        # Whether a printer will take the job may also depend on whose it is (lending terms).
        key = (_needs_key(job), job.member_id)
        known = self._why_not.get(key)
        if known is None:
            known = self._why_not[key] = wording.incompatible(job, self._run.fleet)
        return known

    def _printers(self, compat: int) -> tuple[list[int], tuple[str, ...], int]:
        """The printers a compat fits, their ids, and how many are idle; once per compat."""
        known = self._by_compat.get(compat)
        if known is None:
            fleet = self._run.fleet
            indexes = fleet.printers_of(compat)
            ids = tuple(fleet.printers[p].id for p in indexes)
            closed = self._run.closed
            free = sum(1 for p in indexes if fleet.printers[p].state in DISPATCHABLE and p not in closed)
            known = self._by_compat[compat] = (indexes, ids, free)
        return known

    def _not_queued(self, job: JobInfo, compat: int) -> Explanation:
        compatible = self._printers(compat)[1]
        if job.state is JobState.SUBMITTED:
            reason = WaitReason.SUBMITTED
            message = "Received; it joins the queue once it has been checked."
        else:
            reason = WaitReason.AWAITING_APPROVAL
            message = "Waiting for a manager to approve it."
        if not compatible:
            message += f" Note: {self._incompatible(job)[1]}."
        return Explanation(job.id, None, reason, message, None, compatible)
