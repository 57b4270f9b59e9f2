"""The lab's settings as a manager changes them (every concern reads them through its context)."""

from __future__ import annotations

from ..lab import LabSettings
from ..models import LabSettingsChanges, Member
from .base import LAB_SETTINGS_KEY, Context, require_manager


class LabAdmin:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def settings(self) -> LabSettings:
        return self.ctx.lab_settings()

    def update(self, actor: Member, changes: LabSettingsChanges) -> LabSettings:
        require_manager(actor)
        settings = self.ctx.lab_settings().updated(changes)
        self.ctx.store.set_setting(LAB_SETTINGS_KEY, settings.to_dict())
        return settings
