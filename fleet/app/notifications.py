"""Who is told what: a member's channels and language, a manager's webhooks and their delivery log.

A channel's URL is checked by Apprise when saved and kept as a secret (see
:mod:`fleet.notify.channels`): what comes back is its redacted form. Webhooks are the managers'
alone, as is what they receive (every kind, the lab's included). The deliveries themselves are
queued by the store inside the writes that cause them and sent by :mod:`fleet.notify.worker`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from ..errors import Invalid
from ..models import Member, Page, Role
from ..notify.channels import check_channel_url
from ..notify.events import EventKind, kinds_for, parse_kinds
from ..notify.signing import new_secret
from ..notify.texts import LANGUAGES
from ..notify.webhooks import check_webhook_url
from ..store import Channel, Delivery, Webhook
from .base import Context, require_manager

#: Channels one member may keep.
MAX_CHANNELS = 10
MAX_LABEL_CHARS = 100


@dataclass(frozen=True)
class NotifyProfile:
    """What a member chose: the language, the kinds they may choose from, and their channels."""

    language: str
    kinds: tuple[EventKind, ...]
    channels: list[Channel]


def check_label(label: object, field: str = "label") -> str:
    if not isinstance(label, str) or not label.strip():
        raise Invalid(
            f"{field} must be a short name for the channel, such as 'my email'",
            field=field,
            key="channel_label_bad",
        )
    label = " ".join(label.split())
    if len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise Invalid(
            f"{field} must be at most {MAX_LABEL_CHARS} printable characters",
            field=field,
            key="channel_label_bad",
        )
    return label


def check_language(language: object, field: str = "language") -> str:
    if language not in LANGUAGES:
        raise Invalid(f"{field} must be one of {', '.join(LANGUAGES)}", field=field)
    return str(language)


def check_kinds(kinds: object, manager: bool, field: str = "kinds") -> tuple[EventKind, ...]:
    try:
        return parse_kinds(kinds, manager=manager, field=field)
    except ValueError as exc:
        raise Invalid(str(exc), field=field) from None


class Notifications:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store

    # -- a member's own -------------------------------------------------------------------------------

    def profile(self, actor: Member, *, default_language: str = "en") -> NotifyProfile:
        language = self.store.notify_language(actor.id) or default_language
        return NotifyProfile(
            language, kinds_for(actor.role is Role.MANAGER), self.store.channels_of(actor.id)
        )

    def set_language(self, actor: Member, language: str) -> str:
        language = check_language(language)
        self.store.set_notify_language(actor.id, language)
        return language

    def add_channel(
        self, actor: Member, label: str, url: str, kinds: Sequence[str], *, language: Optional[str] = None
    ) -> Channel:
        """Keep a new channel (the URL checked by Apprise); the first one also fixes the language."""
        manager = actor.role is Role.MANAGER
        label = check_label(label)
        chosen = check_kinds(list(kinds), manager)
        checked = check_channel_url(url)
        if language is not None and self.store.notify_language(actor.id) is None:
            self.store.set_notify_language(actor.id, check_language(language))
        return self.store.add_channel(
            actor.id,
            label=label,
            url=checked.url,
            shown=checked.shown,
            service=checked.service,
            kinds=chosen,
            now=self.ctx.clock(),
            limit=MAX_CHANNELS,
        )

    def update_channel(
        self,
        actor: Member,
        channel_id: int,
        *,
        label: Optional[str] = None,
        kinds: Optional[Sequence[str]] = None,
        resume: bool = False,
    ) -> Channel:
        """Change one of the member's own channels; ``resume`` sends what waited while it was paused."""
        return self.store.update_channel(
            actor.id,
            channel_id,
            label=None if label is None else check_label(label),
            kinds=None if kinds is None else check_kinds(list(kinds), actor.role is Role.MANAGER),
            resume=resume,
        )

    def delete_channel(self, actor: Member, channel_id: int) -> None:
        self.store.delete_channel(actor.id, channel_id)

    # -- the lab's webhooks (managers) ---------------------------------------------------------------

    def webhooks(self, actor: Member) -> list[Webhook]:
        require_manager(actor)
        return self.store.list_webhooks()

    def add_webhook(self, actor: Member, url: str, kinds: Sequence[str]) -> tuple[Webhook, str]:
        """Register a webhook; returns it with its signing secret, which is shown only this once."""
        require_manager(actor)
        checked = check_webhook_url(url)
        chosen = check_kinds(list(kinds), True)
        if not chosen:
            raise Invalid("kinds must name at least one event kind", field="kinds", key="webhook_kinds_none")
        secret = new_secret()
        webhook = self.store.add_webhook(
            actor.id, url=checked, secret=secret, kinds=chosen, now=self.ctx.clock()
        )
        return webhook, secret

    def update_webhook(
        self, actor: Member, webhook_id: int, *, kinds: Optional[Sequence[str]] = None, resume: bool = False
    ) -> Webhook:
        require_manager(actor)
        chosen = None if kinds is None else check_kinds(list(kinds), True)
        return self.store.update_webhook(webhook_id, kinds=chosen, resume=resume)

    def delete_webhook(self, actor: Member, webhook_id: int) -> None:
        require_manager(actor)
        self.store.delete_webhook(webhook_id)

    def deliveries(
        self, actor: Member, webhook_id: int, *, before: Optional[int] = None, limit: int = 100
    ) -> Page[Delivery, int]:
        """A webhook's delivery log, newest first."""
        require_manager(actor)
        return self.store.webhook_deliveries(webhook_id, before=before, limit=limit)

    def replay(self, actor: Member, webhook_id: int, delivery_id: int) -> Delivery:
        """Send a delivery again (a new delivery of the same event, signed anew)."""
        require_manager(actor)
        replayed = self.store.replay_delivery(webhook_id, delivery_id, now=self.ctx.clock())
        self.ctx.outbox_changed()
        return replayed

    # -- events raised outside the store's own writes ----------------------------------------------

    def spool_low(self, printer_id: str, spool: str, remaining_g: float, *, occurrence: str) -> int:
        """Tell the managers who chose it that a printer's spool runs low (once per ``occurrence``).

        A job that takes a spool below :data:`fleet.spools.LOW_GRAMS` raises this itself, in the
        transaction that ends it; this is for any other part that learns of a low spool. Returns how
        many deliveries were queued.
        """
        queued = self.store.raise_spool_low(
            printer_id, spool, remaining_g, occurrence=occurrence, now=self.ctx.clock()
        )
        if queued:
            self.ctx.outbox_changed()
        return queued
