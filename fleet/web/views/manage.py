"""Manager pages: who may use restricted printers, and the lab's rules."""

from __future__ import annotations

import math
from typing import Union

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ...errors import Invalid
from ...lab import check_max_upload_bytes, check_snapshot_max_bytes, check_snapshot_retention_days
from ...models import LabSettingsChanges
from .base import Page, form_error, me, render, service, t, web


@web.get("/members")
def members() -> Page:
    svc = service()
    people = svc.members.list_members(me())  # managers only: anyone else gets 403 here
    grants = svc.members.all_grants(me())
    printers = sorted(svc.printers.list_printers(), key=lambda p: (p.name.lower(), p.id))
    return render(
        "members.html",
        title=t("members.title"),
        page="members",
        people=people,
        grants=grants,
        printers=printers,
        restricted=[p for p in printers if p.restricted],
    )


@web.post("/members/<int:member_id>/grants")
def member_grants(member_id: int) -> BaseResponse:
    svc = service()
    svc.identity.require_manager(me())
    member = svc.members.get_member(me(), member_id)
    wanted = set(request.form.getlist("printer"))
    held = svc.members.grants_for(me(), member_id)
    for printer in svc.printers.list_printers():
        if not printer.restricted:
            continue
        if printer.id in wanted and printer.id not in held:
            svc.members.grant(me(), member_id, printer.id)
        elif printer.id not in wanted and printer.id in held:
            svc.members.revoke_grant(me(), member_id, printer.id)
    flash(t("flash.grants", name=member.name), "ok")
    return redirect(url_for("web.members") + f"#member-{member_id}", 303)


def _whole_or_text(value: str) -> Union[int, str]:
    """A form's whole number, or the text as typed (the service then names the field in its error)."""
    try:
        return int(value.strip())
    except ValueError:
        return value


def _number_or_text(value: str) -> Union[float, str]:
    try:
        number = float(value.strip())
    except ValueError:
        return value
    return number if math.isfinite(number) else value


def _settings_changes() -> LabSettingsChanges:
    """The settings form as the changes it asks for; the lab's own checks name a wrong field."""
    form = request.form
    refused = [c for c in form.get("refused_commands", "").replace(",", " ").split() if c]
    limits: dict[str, dict[str, Union[float, str]]] = {}
    for material in form.getlist("material"):
        limits[material] = {
            "hotend_max_c": _number_or_text(form.get(f"hotend.{material}", "")),
            "bed_max_c": _number_or_text(form.get(f"bed.{material}", "")),
        }
    return LabSettingsChanges(
        approval_required=form.get("approval_required") == "on",
        max_upload_bytes=check_max_upload_bytes(_whole_or_text(form.get("max_upload_bytes", ""))),
        currency=form.get("currency") or None,
        time_zone=form.get("time_zone") or None,
        # A form from before these fields existed leaves them as they are.
        snapshot_max_bytes=None
        if "snapshot_max_bytes" not in form
        else check_snapshot_max_bytes(_whole_or_text(form["snapshot_max_bytes"])),
        snapshot_retention_days=None
        if "snapshot_retention_days" not in form
        else check_snapshot_retention_days(_whole_or_text(form["snapshot_retention_days"])),
        rules={"refused_commands": refused, "material_limits": limits},
    )


@web.route("/settings", methods=["GET", "POST"])
def settings() -> Union[Page, BaseResponse]:
    svc = service()
    svc.identity.require_manager(me())
    if request.method == "GET":
        return render("settings.html", title=t("settings.title"), page="settings", lab=svc.lab.settings())
    try:
        svc.lab.update(me(), _settings_changes())
    except Invalid as exc:
        return render(
            "settings.html",
            422,
            title=t("settings.title"),
            page="settings",
            lab=svc.lab.settings(),
            form=request.form,
            error_field=exc.field,
            **form_error(exc),
        )
    flash(t("flash.settings"), "ok")
    return redirect(url_for("web.settings"), 303)
