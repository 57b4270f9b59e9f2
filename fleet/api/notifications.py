"""/api/v1 notifications: a member's language and channels; managers' webhooks and their delivery log."""

from __future__ import annotations

from flask import Response, jsonify

from ..notify.texts import DEFAULT_LANGUAGE
from .blueprint import body, me, query, service, spec
from .shapes import notifications as shape
from .shapes.base import next_cursor

CHANNEL = "/notifications/channels/<int:channel_id>"
WEBHOOK = "/webhooks/<int:webhook_id>"


def _settings() -> Response:
    profile = service().notifications.profile(me(), default_language=DEFAULT_LANGUAGE)
    return jsonify(
        shape.NotifySettings(
            language=profile.language,
            kinds=list(profile.kinds),
            channels=[shape.NotifyChannel.of(c) for c in profile.channels],
        ).to_json()
    )


@spec.route(
    "GET",
    "/notifications",
    "Your notification language, the event kinds you may choose, and your channels (URLs redacted)",
    shape.NotifySettings,
    errors=(401,),
)
def get_notifications() -> Response:
    return _settings()


@spec.route(
    "PUT",
    "/notifications/language",
    "Choose the language your notifications are written in",
    shape.NotifySettings,
    errors=(401, 422),
    body=shape.LanguageChoice,
)
def set_notify_language() -> Response:
    service().notifications.set_language(me(), body(shape.LanguageChoice).language)
    return _settings()


@spec.route(
    "POST",
    "/notifications/channels",
    "Add a channel: an Apprise URL (checked now, kept secret, shown redacted) and the event kinds it is "
    "told of",
    shape.NotifyChannel,
    status=201,
    answer_text="Created",
    errors=(401, 409, 422),
    body=shape.NewChannel,
)
def add_channel() -> tuple[Response, int]:
    new = body(shape.NewChannel)
    made = service().notifications.add_channel(me(), new.label, new.url, [k.value for k in new.kinds])
    return jsonify(shape.NotifyChannel.of(made).to_json()), 201


@spec.route(
    "PATCH",
    CHANNEL,
    "Rename a channel, change its kinds, or resume it after it was paused",
    shape.NotifyChannel,
    errors=(401, 404, 422),
    body=shape.ChannelChanges,
)
def update_channel(channel_id: int) -> Response:
    asked = body(shape.ChannelChanges)
    changed = service().notifications.update_channel(
        me(),
        channel_id,
        label=asked.label,
        kinds=None if asked.kinds is None else [k.value for k in asked.kinds],
        resume=asked.resume is True,
    )
    return jsonify(shape.NotifyChannel.of(changed).to_json())


@spec.route(
    "DELETE",
    CHANNEL,
    "Delete a channel (what waited for it is dropped)",
    None,
    status=204,
    answer_text="Deleted",
    errors=(401, 404),
)
def delete_channel(channel_id: int) -> tuple[str, int]:
    service().notifications.delete_channel(me(), channel_id)
    return "", 204


@spec.route("GET", "/webhooks", "The lab's webhooks (managers)", shape.Webhooks, errors=(401, 403))
def list_webhooks() -> Response:
    found = service().notifications.webhooks(me())
    return jsonify(shape.Webhooks(webhooks=[shape.WebhookShape.of(w) for w in found]).to_json())


@spec.route(
    "POST",
    "/webhooks",
    "Register a webhook (managers): deliveries are signed with the secret in the answer, shown only "
    "this once",
    shape.NewWebhookAnswer,
    status=201,
    answer_text="Created",
    errors=(401, 403, 422),
    body=shape.NewWebhook,
)
def add_webhook() -> tuple[Response, int]:
    service().identity.require_manager(me())  # who may, before what they sent
    new = body(shape.NewWebhook)
    webhook, secret = service().notifications.add_webhook(me(), new.url, [k.value for k in new.kinds])
    answer = shape.NewWebhookAnswer(**shape.WebhookShape.of(webhook).model_dump(), secret=secret)
    return jsonify(answer.to_json()), 201


@spec.route(
    "PATCH",
    WEBHOOK,
    "Change a webhook's kinds, or resume it after it was paused (managers)",
    shape.WebhookShape,
    errors=(401, 403, 404, 422),
    body=shape.WebhookChanges,
)
def update_webhook(webhook_id: int) -> Response:
    service().identity.require_manager(me())
    asked = body(shape.WebhookChanges)
    changed = service().notifications.update_webhook(
        me(),
        webhook_id,
        kinds=None if asked.kinds is None else [k.value for k in asked.kinds],
        resume=asked.resume is True,
    )
    return jsonify(shape.WebhookShape.of(changed).to_json())


@spec.route(
    "DELETE",
    WEBHOOK,
    "Delete a webhook and its delivery log (managers)",
    None,
    status=204,
    answer_text="Deleted",
    errors=(401, 403, 404),
)
def delete_webhook(webhook_id: int) -> tuple[str, int]:
    service().notifications.delete_webhook(me(), webhook_id)
    return "", 204


@spec.route(
    "GET",
    WEBHOOK + "/deliveries",
    "A webhook's deliveries a page at a time, newest first (managers)",
    shape.Deliveries,
    errors=(401, 403, 404, 422),
    query=shape.DeliveryQuery,
)
def list_deliveries(webhook_id: int) -> Response:
    service().identity.require_manager(me())
    asked = query(shape.DeliveryQuery)
    page = service().notifications.deliveries(me(), webhook_id, before=asked.cursor, limit=asked.limit)
    return jsonify(
        shape.Deliveries(
            deliveries=[shape.DeliveryShape.of(d) for d in page.items],
            next_cursor=next_cursor(page.next_after),
        ).to_json()
    )


@spec.route(
    "POST",
    WEBHOOK + "/deliveries/<int:delivery_id>/replay",
    "Send a delivery again, as a new delivery of the same event, signed anew (managers)",
    shape.DeliveryShape,
    status=201,
    answer_text="Created",
    errors=(401, 403, 404),
)
def replay_delivery(webhook_id: int, delivery_id: int) -> tuple[Response, int]:
    replayed = service().notifications.replay(me(), webhook_id, delivery_id)
    return jsonify(shape.DeliveryShape.of(replayed).to_json()), 201
