"""Notifications: a member's language and channels (URLs never sent back), managers' webhooks and
their delivery log."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Optional

from pydantic import BeforeValidator, Field

from ...errors import Invalid
from ...notify.channels import MAX_URL_CHARS
from ...notify.events import EventKind
from ...notify.texts import LANGUAGES
from ...store import Channel, Delivery, Webhook
from .base import IdCursor, InputModel, Maybe, OutputModel, PageLimit, Timestamp


def _kind(value: Any) -> Any:
    try:
        return EventKind(value)
    except ValueError:
        known = ", ".join(kind.value for kind in EventKind)
        raise Invalid(
            f"kinds: {str(value)[:40]!r} is no event kind; choose among {known}", field="kinds"
        ) from None


def _language(value: Any) -> Any:
    if value not in LANGUAGES:
        raise Invalid(f"language must be one of {', '.join(LANGUAGES)}", field="language")
    return value


Kind = Annotated[EventKind, BeforeValidator(_kind)]
Kinds = Annotated[list[Kind], Field(max_length=len(EventKind))]
Language = Annotated[str, Field(pattern="^(" + "|".join(LANGUAGES) + ")$"), BeforeValidator(_language)]
Label = Annotated[str, Field(min_length=1, max_length=100)]
ChannelUrl = Annotated[str, Field(min_length=1, max_length=MAX_URL_CHARS)]


class NotifyChannel(OutputModel):
    """One of a member's channels; ``shown`` is its URL reduced to the scheme and host."""

    id: int
    label: str
    shown: str
    service: str
    kinds: list[EventKind]
    created_at: Timestamp
    failures: int = Field(description="Failed deliveries in a row")
    paused: bool = Field(description="Paused after too many failures in a row; resume it to send again")
    last_error: Optional[str]

    @classmethod
    def of(cls, channel: Channel) -> NotifyChannel:
        return cls.copied(channel, kinds=list(channel.kinds), paused=channel.paused_at is not None)


class NotifySettings(OutputModel):
    """What a member is told and where: the language, the kinds they may choose, their channels."""

    language: str
    kinds: list[EventKind]
    channels: list[NotifyChannel]


class LanguageChoice(InputModel):
    """``PUT /notifications/language``."""

    language: Language


class NewChannel(InputModel):
    """``POST /notifications/channels``: an Apprise URL (mailto://, ntfys://, json://, discord:// …)."""

    noun: ClassVar[str] = "channel field"

    label: Label
    url: ChannelUrl
    kinds: Kinds = []


class ChannelChanges(InputModel):
    """``PATCH /notifications/channels/{id}``: only the fields named change; ``resume`` un-pauses."""

    noun: ClassVar[str] = "channel field"
    messages: ClassVar[dict[str, str]] = {"resume": "resume must be true or false"}

    label: Maybe[Label] = None
    kinds: Maybe[Kinds] = None
    resume: Maybe[bool] = None


class WebhookShape(OutputModel):
    id: int
    url: str
    kinds: list[EventKind]
    created_at: Timestamp
    created_by: Optional[int]
    failures: int
    paused: bool
    last_error: Optional[str]

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookShape:
        return cls.copied(webhook, kinds=list(webhook.kinds), paused=webhook.paused_at is not None)


class NewWebhookAnswer(WebhookShape):
    """A new webhook with the secret its deliveries are signed with, shown only this once."""

    secret: str


class Webhooks(OutputModel):
    webhooks: list[WebhookShape]


class NewWebhook(InputModel):
    """``POST /webhooks``: an http:// or https:// URL and the kinds it receives."""

    noun: ClassVar[str] = "webhook field"

    url: Annotated[str, Field(min_length=1, max_length=2000)]
    kinds: Annotated[list[Kind], Field(min_length=1, max_length=len(EventKind))]


class WebhookChanges(InputModel):
    noun: ClassVar[str] = "webhook field"
    messages: ClassVar[dict[str, str]] = {"resume": "resume must be true or false"}

    kinds: Maybe[Annotated[list[Kind], Field(min_length=1, max_length=len(EventKind))]] = None
    resume: Maybe[bool] = None


class DeliveryShape(OutputModel):
    """One delivery: what was sent (``data``), how often tried, and how it went."""

    id: int
    delivery_key: str
    event_key: str
    kind: EventKind
    data: dict[str, Any]
    created_at: Timestamp
    state: str = Field(description="pending, sent or failed (given up)")
    due_at: Timestamp
    attempts: int
    sent_at: Optional[Timestamp]
    last_status: Optional[int]
    last_error: Optional[str]

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryShape:
        return cls.copied(delivery)


class Deliveries(OutputModel):
    deliveries: list[DeliveryShape]
    next_cursor: Optional[str]


class DeliveryQuery(PageLimit):
    """A page of a delivery log, newest first: ``limit`` rows older than ``cursor``."""

    cursor: IdCursor = None
