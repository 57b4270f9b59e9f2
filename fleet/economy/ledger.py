"""The ledger's records, and a month of it as CSV for the lab's books (amounts decimal-exact)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Optional
from zoneinfo import ZoneInfo

from .money import major, plain
from .pricing import Charge


@dataclass(frozen=True)
class LedgerEntry:
    """A job's charge as the ledger holds it: fixed when the job ended, traceable line by line."""

    id: int
    job_id: int
    member_id: int
    at: float
    #: done, failed or cancelled.
    outcome: str
    #: The price list the charge was computed from.
    price_list_id: Optional[int]
    charge: Charge

    @property
    def total_minor(self) -> int:
        return self.charge.total_minor

    @property
    def currency(self) -> str:
        return self.charge.currency


CSV_COLUMNS = (
    "date",
    "charge_id",
    "job_id",
    "member",
    "outcome",
    "line",
    "description",
    "quantity",
    "unit",
    "unit_price",
    "amount",
    "currency",
)


def ledger_csv(entries: Iterable[LedgerEntry], names: Mapping[int, str], time_zone: str) -> str:
    """One CSV row per charge line, then one total row per charge; dates in the lab's time zone."""
    zone = ZoneInfo(time_zone)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        when = datetime.fromtimestamp(entry.at, zone).isoformat(timespec="seconds")
        member = _cell(names.get(entry.member_id, f"member {entry.member_id}"))
        currency = entry.currency
        for line in entry.charge.lines:
            writer.writerow(
                (
                    when,
                    entry.id,
                    entry.job_id,
                    member,
                    entry.outcome,
                    line.kind.value,
                    _cell(line.description),
                    plain(line.quantity),
                    line.unit,
                    plain(line.unit_price),
                    major(line.amount_minor, currency),
                    currency,
                )
            )
        writer.writerow(
            (when, entry.id, entry.job_id, member, entry.outcome, "total", "", "", "", "",
             major(entry.total_minor, currency), currency)
        )  # fmt: skip
    return out.getvalue()


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not run as a formula (names are chosen by members)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
