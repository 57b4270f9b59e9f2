"""Notifications on the dashboard: a member's channels and language (on the account page), and the
lab's webhooks with their delivery log (managers)."""

from __future__ import annotations

from typing import Optional, Union

from flask import flash, g, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ...errors import FleetError
from ...notify.events import ALL_KINDS
from .account import account_page
from .base import Page, form_error, me, render, service, t, web


def _int(value: Optional[str]) -> Optional[int]:
    return int(value) if value and value.isascii() and value.isdigit() and len(value) <= 18 else None


@web.post("/account/notifications/language")
def notify_language() -> BaseResponse:
    try:
        service().notifications.set_language(me(), request.form.get("language", ""))
    except FleetError as error:
        flash(form_error(error)["error"], "error")
    else:
        flash(t("notify.language_saved"), "ok")
    return redirect(url_for("web.account") + "#notifications", 303)


@web.post("/account/channels")
def add_channel() -> Union[Page, BaseResponse]:
    form = request.form
    try:
        service().notifications.add_channel(
            me(), form.get("label", ""), form.get("url", ""), form.getlist("kind"), language=g.lang
        )
    except FleetError as error:
        # The URL is not put back in the form: it may hold a secret, and pages are cached.
        return account_page(422, channel_error=form_error(error), channel_label=form.get("label", ""))
    flash(t("notify.channel_added"), "ok")
    return redirect(url_for("web.account") + "#notifications", 303)


@web.post("/account/channels/<int:channel_id>")
def update_channel(channel_id: int) -> BaseResponse:
    resume = request.form.get("action") == "resume"
    try:
        if request.form.get("action") == "delete":
            service().notifications.delete_channel(me(), channel_id)
            flash(t("notify.channel_deleted"), "ok")
        else:
            kinds = None if resume else request.form.getlist("kind")
            service().notifications.update_channel(me(), channel_id, kinds=kinds, resume=resume)
            flash(t("notify.channel_resumed" if resume else "notify.channel_saved"), "ok")
    except FleetError as error:
        flash(form_error(error)["error"], "error")
    return redirect(url_for("web.account") + "#notifications", 303)


# -- the lab's webhooks (managers) ---------------------------------------------------------------------


def webhooks_page(status: int = 200, **context: object) -> Page:
    hooks = service().notifications.webhooks(me())  # managers only: anyone else gets 403 here
    return render(
        "webhooks.html",
        status,
        title=t("webhooks.title"),
        page="webhooks",
        hooks=hooks,
        kinds=ALL_KINDS,
        **context,
    )


@web.get("/webhooks")
def webhooks() -> Page:
    return webhooks_page()


@web.post("/webhooks")
def add_webhook() -> Union[Page, BaseResponse]:
    service().identity.require_manager(me())
    form = request.form
    try:
        webhook, secret = service().notifications.add_webhook(me(), form.get("url", ""), form.getlist("kind"))
    except FleetError as error:
        return webhooks_page(422, error=form_error(error), url=form.get("url", ""))
    # Shown on this answer only (not through a redirect, which would carry it in the session).
    return webhooks_page(new_secret=secret, new_id=webhook.id)


@web.post("/webhooks/<int:webhook_id>")
def update_webhook(webhook_id: int) -> BaseResponse:
    service().identity.require_manager(me())
    action = request.form.get("action")
    try:
        if action == "delete":
            service().notifications.delete_webhook(me(), webhook_id)
            flash(t("webhooks.deleted"), "ok")
            return redirect(url_for("web.webhooks"), 303)
        service().notifications.update_webhook(me(), webhook_id, resume=True)
        flash(t("webhooks.resumed"), "ok")
    except FleetError as error:
        flash(form_error(error)["error"], "error")
    return redirect(url_for("web.webhooks"), 303)


@web.get("/webhooks/<int:webhook_id>")
def webhook_log(webhook_id: int) -> Page:
    svc = service().notifications
    before = _int(request.args.get("before"))
    page = svc.deliveries(me(), webhook_id, before=before, limit=50)
    hook = next((h for h in svc.webhooks(me()) if h.id == webhook_id), None)
    return render(
        "webhook_log.html",
        title=t("webhooks.log_title", id=webhook_id),
        page="webhooks",
        hook=hook,
        deliveries=page.items,
        next_before=page.next_after,
    )


@web.post("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/replay")
def replay_delivery(webhook_id: int, delivery_id: int) -> BaseResponse:
    service().identity.require_manager(me())
    try:
        service().notifications.replay(me(), webhook_id, delivery_id)
    except FleetError as error:
        flash(form_error(error)["error"], "error")
    else:
        flash(t("webhooks.replayed"), "ok")
    return redirect(url_for("web.webhook_log", webhook_id=webhook_id), 303)
