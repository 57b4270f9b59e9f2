"""The lab's printers as a manager keeps them, and the one way a printer's plate is declared clear."""

from __future__ import annotations

from typing import Optional

from ..errors import Conflict, Forbidden
from ..models import Member, NewPrinter, Page, Printer, PrinterChanges, Role, asked_changes
from ..protocol import CommandType
from ..states import PrinterState
from .base import Context, require_manager


class Printers:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def list_printers(self) -> list[Printer]:
        return self.store.list_printers()

    def printer_page(self, *, after: Optional[str] = None, limit: int = 100) -> Page[Printer, str]:
        """A page of the printers in id order (every member may see every printer)."""
        return self.store.printer_page(after=after, limit=limit)

    def get_printer(self, printer_id: str) -> Printer:
        return self.store.get_printer(printer_id)

    def add_printer(self, actor: Member, new: NewPrinter) -> Printer:
        require_manager(actor)
        printer = Printer(
            id=new.id,
            name=new.name,
            state=PrinterState.IDLE,
            volume=new.spec.volume,
            nozzle_diameter=new.spec.nozzle_diameter,
            material=new.spec.material,
            restricted=new.restricted,
            current_job_id=None,
            last_seen=None,
            created_at=self.ctx.clock(),
        )
        created = self.store.create_printer(printer)
        self.ctx.printer_changed(created.id)
        return created

    def update_printer(self, actor: Member, printer_id: str, asked: PrinterChanges) -> Printer:
        require_manager(actor)
        printer = self.store.get_printer(printer_id)
        changes = asked_changes(asked, besides={"maintenance"})
        if asked.maintenance is True and printer.state is not PrinterState.MAINTENANCE:
            if printer.current_job_id is not None:
                raise Conflict("this printer holds a job: cancel or finish it before maintenance")
            if printer.state is PrinterState.AWAITING_BED_CLEAR:
                # Its node waits for the clear too, and declines work until it comes: a maintenance
                # ending in "idle" would leave the fleet offering it jobs it turns down.
                raise Conflict(
                    "this printer's plate still holds a finished print: clear the bed before maintenance"
                )
            changes["state"] = PrinterState.MAINTENANCE
        elif asked.maintenance is False and printer.state is PrinterState.MAINTENANCE:
            changes["state"] = PrinterState.IDLE
        updated = self.store.update_printer(printer_id, **changes)
        self.ctx.printer_changed(printer_id)
        if updated.state is PrinterState.IDLE and printer.state is not PrinterState.IDLE:
            self.ctx.work_available()
        return updated

    def plate_owner(self, printer_id: str) -> Optional[int]:
        """The member whose print is on a printer's plate: the job that ended there last.

        By when it ended, not by job id: a job submitted earlier often prints later (priority,
        fair share), and the plate holds the later print.
        """
        last = self.store.last_finished_job(printer_id)
        return None if last is None else last.member_id

    def confirm_bed_cleared(self, actor: Member, printer_id: str) -> Printer:
        """A person at the printer confirms its plate is empty: it may take work again."""
        printer = self.store.get_printer(printer_id)
        if printer.state is not PrinterState.AWAITING_BED_CLEAR:
            raise Conflict(
                f"printer {printer_id} is {printer.state.value}, not waiting for its bed to be cleared",
                key="bed_not_waiting",
                params={"name": printer.name, "printer_state": printer.state.value},
            )
        if actor.role is not Role.MANAGER and self.plate_owner(printer_id) != actor.id:
            raise Forbidden(
                "only a manager or the member whose print is on the plate may clear it", key="bed_not_yours"
            )
        # Tell the node first: commands reach it in order on its topic, so a dispatch made as soon
        # as the printer is idle cannot overtake the news that its plate is clear.
        self.ctx.tell_printer(printer_id, CommandType.BED_CLEARED, None)
        return self._clear_bed(printer_id)

    def node_cleared_bed(self, printer_id: str) -> Optional[Printer]:
        """A node reports its plate cleared (a person confirmed it there); None if it was not waiting."""
        printer = self.store.get_printer(printer_id)
        if printer.state is not PrinterState.AWAITING_BED_CLEAR or printer.current_job_id is not None:
            return None
        try:
            return self._clear_bed(printer_id)
        except Conflict:
            return None  # cleared meanwhile (from the dashboard, or by a second report)

    def _clear_bed(self, printer_id: str) -> Printer:
        """The one move from a full plate to work: only from waiting for a bed clear, checked by the store."""
        cleared = self.store.update_printer(
            printer_id, expect={PrinterState.AWAITING_BED_CLEAR}, state=PrinterState.IDLE
        )
        self.ctx.printer_changed(printer_id)
        self.ctx.work_available()
        return cleared
