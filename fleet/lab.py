"""The lab's own settings, adjustable by a manager: approval, upload limit, G-code rules."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .config import DEFAULT_MAX_UPLOAD_BYTES
from .errors import Invalid
from .gcode import DEFAULT_RULES, SafetyRules

#: The largest upload limit a manager can set: beyond it a single file would be a denial of service.
MAX_UPLOAD_CEILING = 2 * 1024 * 1024 * 1024
#: The longest fair-share half-life a lab may set: ten years (usage then barely fades at all).
MAX_HALF_LIFE_S = 10 * 365 * 86400.0


@dataclass(frozen=True)
class LabSettings:
    #: Every job of every member waits for a manager's approval (a member's own setting overrides it).
    approval_required: bool = False
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_copies: int = 20
    #: Fair share looks at printer-hours with this half-life: last week's prints count half.
    fair_share_half_life_s: float = 7 * 86400
    rules: SafetyRules = field(default_factory=lambda: DEFAULT_RULES)

    def to_dict(self) -> dict[str, Any]:
        return {
            "approval_required": self.approval_required,
            "max_upload_bytes": self.max_upload_bytes,
            "max_copies": self.max_copies,
            "fair_share_half_life_s": self.fair_share_half_life_s,
            "rules": self.rules.to_dict(),
        }

    def updated(self, changes: Any) -> LabSettings:
        """These settings with ``changes`` (a partial JSON object) applied; errors name the field."""
        if not isinstance(changes, dict):
            raise Invalid("settings must be a JSON object")
        unknown = sorted(set(changes) - set(self.to_dict()))
        if unknown:
            raise Invalid(f"unknown setting: {', '.join(unknown)}", field=unknown[0])
        result = self
        if "approval_required" in changes:
            value = changes["approval_required"]
            if not isinstance(value, bool):
                raise Invalid("approval_required must be true or false", field="approval_required")
            result = replace(result, approval_required=value)
        if "max_upload_bytes" in changes:
            value = changes["max_upload_bytes"]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_UPLOAD_CEILING:
                raise Invalid(
                    f"max_upload_bytes must be a whole number from 1 to {MAX_UPLOAD_CEILING}",
                    field="max_upload_bytes",
                )
            result = replace(result, max_upload_bytes=value)
        if "max_copies" in changes:
            value = changes["max_copies"]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 500:
                raise Invalid("max_copies must be a whole number from 1 to 500", field="max_copies")
            result = replace(result, max_copies=value)
        if "fair_share_half_life_s" in changes:
            value = changes["fair_share_half_life_s"]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 3600 <= value <= MAX_HALF_LIFE_S
            ):
                raise Invalid(
                    "fair_share_half_life_s must be a number of seconds, from 3600 (an hour) to "
                    f"{MAX_HALF_LIFE_S:.0f} (ten years)",
                    field="fair_share_half_life_s",
                )
            result = replace(result, fair_share_half_life_s=float(value))
        if "rules" in changes:
            rules = changes["rules"]
            if not isinstance(rules, dict):
                raise Invalid("rules must be a JSON object", field="rules")
            # A partial object changes only the options it names.
            result = replace(result, rules=SafetyRules.from_dict({**result.rules.to_dict(), **rules}))
        return result

    @classmethod
    def from_dict(cls, data: Any) -> LabSettings:
        return cls().updated(data or {})
