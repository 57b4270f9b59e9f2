"""The lab's economy on the dashboard: the price list (public), each member's ledger, and for managers
everyone's ledger with a month's CSV, membership groups and quotas, and lifting a job's quotas."""

from __future__ import annotations

import json
from typing import Any, Optional, Union

from flask import Response, flash, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ...economy.money import major, plain
from ...economy.periods import Period
from ...economy.pricing import Charge
from ...economy.quotas import Cap, Measure
from ...errors import Invalid
from ...models import Role
from .base import Page, back, form_error, me, render, service, t, web


def money(minor: int, currency: str) -> str:
    return f"{major(minor, currency)} {currency}"


def cost_lines(charge: Charge) -> list[dict[str, str]]:
    """A charge's lines as a table shows them."""
    return [
        {
            "kind": line.kind.value,
            "description": line.description,
            "quantity": f"{plain(line.quantity)} {line.unit}".strip() if line.unit else "",
            "unit_price": plain(line.unit_price) if line.unit else "",
            "amount": money(line.amount_minor, charge.currency),
        }
        for line in charge.lines
    ]


def _prices_page(status: int = 200, **extra: Any) -> Page:
    prices, list_id, currency = service().pricing.price_list(me())
    return render(
        "prices.html",
        status,
        title=t("prices.title"),
        page="prices",
        prices=prices,
        list_id=list_id,
        currency=currency,
        plain=plain,
        body=extra.pop("body", json.dumps(prices.to_dict(), indent=2)),
        **extra,
    )


@web.get("/prices")
def prices() -> Page:
    return _prices_page()


@web.post("/prices")
def set_prices() -> Union[Page, BaseResponse]:
    svc = service()
    svc.identity.require_manager(me())
    text = request.form.get("body", "")
    try:
        try:
            data = json.loads(text[:100_000])
        except ValueError:
            raise Invalid(
                "the price list must be a JSON object", field="body", key="prices_not_json"
            ) from None
        svc.pricing.set_price_list(me(), data)
    except Invalid as exc:
        return _prices_page(422, body=text, **form_error(exc))
    flash(t("flash.prices_saved"), "ok")
    return redirect(url_for("web.prices"), 303)


MEASURE_KEYS = {
    Measure.PRINTER_HOURS: "groups.hours",
    Measure.GRAMS: "groups.grams",
    Measure.COST: "groups.cost",
    Measure.JOBS_AT_ONCE: "groups.at_once",
}


def standing_lines(caps: list[Cap], currency: str) -> list[dict[str, str]]:
    """A member's limits as the ledger page lists them: what, how much used of how much, when it renews."""

    def shown(measure: Measure, value: float) -> str:
        if measure is Measure.PRINTER_HOURS:
            return f"{value / 3600:.1f}"
        if measure is Measure.COST:
            return str(major(round(value), currency))
        return f"{value:.0f}"

    return [
        {
            "what": t(MEASURE_KEYS[cap.measure], currency=currency),
            "period": t(f"groups.period.{cap.period.value}") if cap.period is not None else "",
            "used": shown(cap.measure, cap.used),
            "limit": shown(cap.measure, cap.limit),
            "renews": cap.renews.isoformat() if cap.renews is not None else "",
        }
        for cap in caps
    ]


@web.get("/ledger")
def ledger() -> Page:
    svc = service()
    manager = me().role is Role.MANAGER
    who: Optional[int] = me().id
    if manager:
        asked = request.args.get("member", "")
        who = int(asked) if asked.isdigit() else None
    month = request.args.get("month") or None
    try:
        page = svc.pricing.ledger(me(), member_id=who, month=month, limit=200)
    except Invalid as exc:
        return render(
            "ledger.html", 422, title=t("ledger.title"), page="ledger", entries=[], **form_error(exc)
        )
    names = {m.id: m.name for m in svc.members.list_members(me())} if manager else {me().id: me().name}
    entries = [
        {
            "entry": e,
            "member": names.get(e.member_id, f"#{e.member_id}"),
            "total": money(e.total_minor, e.currency),
            "lines": cost_lines(e.charge),
        }
        for e in page.items
    ]
    return render(
        "ledger.html",
        title=t("ledger.title"),
        page="ledger",
        entries=entries,
        standing=standing_lines(svc.quotas.standing(me(), me().id), svc.lab.settings().currency),
        members=sorted(names.items(), key=lambda item: item[1].lower()) if manager else [],
        chosen=who,
        month=month or "",
    )


@web.get("/ledger/export")
def ledger_export() -> Response:
    svc = service()
    svc.identity.require_manager(me())
    month = request.args.get("month", "")
    text = svc.pricing.month_csv(me(), month)
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="ledger-{month}.csv"'},
    )


def _groups_page(status: int = 200, **extra: Any) -> Page:
    svc = service()
    svc.identity.require_manager(me())
    groups = svc.quotas.groups(me())
    currency = svc.lab.settings().currency
    held = svc.quotas.quotas(me())
    people = svc.members.list_members(me())
    memberships = svc.quotas.memberships(me())
    return render(
        "groups.html",
        status,
        title=t("groups.title"),
        page="groups",
        groups=groups,
        quotas=held,
        people=people,
        memberships=memberships,
        periods=[p.value for p in Period],
        currency=currency,
        plain=plain,
        money=money,
        **extra,
    )


@web.get("/groups")
def groups() -> Page:
    return _groups_page()


@web.post("/groups")
def create_group() -> Union[Page, BaseResponse]:
    svc = service()
    svc.identity.require_manager(me())
    try:
        priority = request.form.get("priority", "0").strip() or "0"
        group = svc.quotas.create_group(
            me(), request.form.get("name", ""), int(priority) if priority.lstrip("-").isdigit() else priority
        )
    except Invalid as exc:
        return _groups_page(422, **form_error(exc))
    flash(t("flash.group_created", name=group.name), "ok")
    return redirect(url_for("web.groups"), 303)


@web.post("/groups/quota")
def set_quota() -> Union[Page, BaseResponse]:
    svc = service()
    svc.identity.require_manager(me())
    form = request.form
    holder = form.get("holder", "")
    data: dict[str, Any] = {"period": form.get("period", "")}
    for name in ("printer_hours", "grams", "cost"):
        if form.get(name, "").strip():
            data[name] = form[name].strip()
    if form.get("jobs_at_once", "").strip():
        text = form["jobs_at_once"].strip()
        data["jobs_at_once"] = int(text) if text.isdigit() else text
    kind, _, number = holder.partition(":")
    try:
        if not number.isdigit() or kind not in ("group", "member"):
            raise Invalid("choose a group or a member for the quota", field="holder", key="quota_holder")
        target = {"group_id" if kind == "group" else "member_id": int(number)}
        svc.quotas.set_quota(me(), data, **target)
    except Invalid as exc:
        return _groups_page(422, **form_error(exc))
    flash(t("flash.quota_set"), "ok")
    return redirect(url_for("web.groups"), 303)


@web.post("/groups/member")
def set_member_group() -> Union[Page, BaseResponse]:
    svc = service()
    svc.identity.require_manager(me())
    member = request.form.get("member", "")
    group = request.form.get("group", "")
    if not member.isdigit():
        return _groups_page(422, error=t("groups.choose_member"))
    svc.quotas.set_member_group(me(), int(member), int(group) if group.isdigit() else None)
    flash(t("flash.member_group"), "ok")
    return redirect(url_for("web.groups"), 303)


@web.post("/jobs/<int:job_id>/lift-quotas")
def lift_quotas(job_id: int) -> BaseResponse:
    service().quotas.lift(me(), job_id)
    flash(t("flash.lift_quotas", id=job_id), "ok")
    return back(url_for("web.job", job_id=job_id))
