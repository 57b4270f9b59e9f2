"""The lab's own settings, adjustable by a manager: approval, uploads, currency, time zone, G-code rules."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Optional, TypeVar

from .config import DEFAULT_MAX_UPLOAD_BYTES
from .economy.money import check_currency
from .economy.periods import check_time_zone
from .errors import Invalid
from .gcode import DEFAULT_RULES, SafetyRules
from .http_protocol import DEFAULT_SNAPSHOT_BYTES, MAX_SNAPSHOT_BYTES
from .models import LabSettingsChanges

#: The largest upload limit a manager can set: beyond it a single file would be a denial of service.
MAX_UPLOAD_CEILING = 2 * 1024 * 1024 * 1024
#: The longest fair-share half-life a lab may set: ten years (usage then barely fades at all).
MAX_HALF_LIFE_S = 10 * 365 * 86400.0
#: The shortest: an hour (shorter forgets a print before the next one is queued).
MIN_HALF_LIFE_S = 3600.0
#: The highest max_copies (copies of a file one submission may ask for) a manager may set.
MAX_COPIES = 500
#: The smallest plate photo limit: below it no webcam's photo of a plate is readable.
MIN_SNAPSHOT_BYTES = 64 * 1024
#: Plate photos are kept from a day to a year (they are for deciding whether a plate is clear).
MAX_SNAPSHOT_RETENTION_DAYS = 365

T = TypeVar("T")


@dataclass(frozen=True)
class LabSettings:
    #: Every job of every member waits for a manager's approval (a member's own setting overrides it).
    approval_required: bool = False
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_copies: int = 20
    #: Fair share looks at printer-hours with this half-life: last week's prints count half.
    fair_share_half_life_s: float = 7 * 86400
    #: ISO 4217 code of the currency the price list and the ledger are in.
    currency: str = "EUR"
    #: IANA name; quota periods and the ledger's months follow its midnights.
    time_zone: str = "UTC"
    #: The largest photo of a plate a printer may send, bytes.
    snapshot_max_bytes: int = DEFAULT_SNAPSHOT_BYTES
    #: How many days the photos of plates are kept.
    snapshot_retention_days: int = 14
    rules: SafetyRules = field(default_factory=lambda: DEFAULT_RULES)

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**values, "rules": self.rules.to_dict()}

    def updated(self, changes: LabSettingsChanges) -> LabSettings:
        """These settings with ``changes`` applied (each value checked where it was read)."""
        result = self
        if changes.approval_required is not None:
            result = replace(result, approval_required=changes.approval_required)
        if changes.max_upload_bytes is not None:
            result = replace(result, max_upload_bytes=changes.max_upload_bytes)
        if changes.max_copies is not None:
            result = replace(result, max_copies=changes.max_copies)
        if changes.fair_share_half_life_s is not None:
            result = replace(result, fair_share_half_life_s=float(changes.fair_share_half_life_s))
        if changes.currency is not None:
            result = replace(result, currency=check_currency(changes.currency))
        if changes.time_zone is not None:
            result = replace(result, time_zone=check_time_zone(changes.time_zone))
        if changes.snapshot_max_bytes is not None:
            result = replace(result, snapshot_max_bytes=changes.snapshot_max_bytes)
        if changes.snapshot_retention_days is not None:
            result = replace(result, snapshot_retention_days=changes.snapshot_retention_days)
        if changes.rules is not None:
            # A partial object changes only the options it names; SafetyRules checks each one.
            merged = {**result.rules.to_dict(), **changes.rules}
            result = replace(result, rules=SafetyRules.from_dict(merged))
        return result

    @classmethod
    def from_dict(cls, data: Any) -> LabSettings:
        """Settings as :meth:`to_dict` stored them, each value checked again (the row may be old)."""
        if not isinstance(data, dict):
            raise Invalid("settings must be a JSON object")
        unknown = sorted(set(data) - set(cls().to_dict()))
        if unknown:
            raise Invalid(f"unknown setting: {', '.join(unknown)}", field=unknown[0])
        rules = data.get("rules")
        if rules is not None and not isinstance(rules, dict):
            raise Invalid("rules must be a JSON object", field="rules")
        approval = data.get("approval_required")
        if approval is not None and not isinstance(approval, bool):
            raise Invalid("approval_required must be true or false", field="approval_required")
        return cls().updated(
            LabSettingsChanges(
                approval_required=approval,
                max_upload_bytes=_checked(data, "max_upload_bytes", check_max_upload_bytes),
                max_copies=_checked(data, "max_copies", check_max_copies),
                fair_share_half_life_s=_checked(data, "fair_share_half_life_s", check_half_life),
                currency=_checked(data, "currency", check_currency),
                time_zone=_checked(data, "time_zone", check_time_zone),
                snapshot_max_bytes=_checked(data, "snapshot_max_bytes", check_snapshot_max_bytes),
                snapshot_retention_days=_checked(
                    data, "snapshot_retention_days", check_snapshot_retention_days
                ),
                rules=rules,
            )
        )


def _checked(data: dict[str, Any], key: str, check: Callable[[Any], T]) -> Optional[T]:
    return None if data.get(key) is None else check(data[key])


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_max_upload_bytes(value: Any) -> int:
    if not _whole(value) or not 1 <= value <= MAX_UPLOAD_CEILING:
        raise Invalid(
            f"max_upload_bytes must be a whole number from 1 to {MAX_UPLOAD_CEILING}",
            field="max_upload_bytes",
        )
    return int(value)


def check_max_copies(value: Any) -> int:
    if not _whole(value) or not 1 <= value <= MAX_COPIES:
        raise Invalid(f"max_copies must be a whole number from 1 to {MAX_COPIES}", field="max_copies")
    return int(value)


def check_snapshot_max_bytes(value: Any) -> int:
    if not _whole(value) or not MIN_SNAPSHOT_BYTES <= value <= MAX_SNAPSHOT_BYTES:
        raise Invalid(
            f"snapshot_max_bytes must be a whole number of bytes from {MIN_SNAPSHOT_BYTES} (64 KiB) to "
            f"{MAX_SNAPSHOT_BYTES} (16 MiB)",
            field="snapshot_max_bytes",
        )
    return int(value)


def check_snapshot_retention_days(value: Any) -> int:
    if not _whole(value) or not 1 <= value <= MAX_SNAPSHOT_RETENTION_DAYS:
        raise Invalid(
            f"snapshot_retention_days must be a whole number of days from 1 to {MAX_SNAPSHOT_RETENTION_DAYS}",
            field="snapshot_retention_days",
        )
    return int(value)


def check_half_life(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not MIN_HALF_LIFE_S <= value <= MAX_HALF_LIFE_S
    ):
        raise Invalid(
            f"fair_share_half_life_s must be a number of seconds, from {MIN_HALF_LIFE_S:.0f} (an hour) to "
            f"{MAX_HALF_LIFE_S:.0f} (ten years)",
            field="fair_share_half_life_s",
        )
    return float(value)
