"""The print history and statistics page, and its figures as CSV."""

from __future__ import annotations

import time

from flask import Response, request

from ...errors import Invalid
from ...models import Role
from ...statistics import Dimension, Report, to_csv
from ..stats import CHART_BOTTOM, CHART_HEIGHT, CHART_LEFT, CHART_TOP, CHART_WIDTH, compute, hbar_chart
from .base import Page, format_duration, me, render, service, t, web


def _period_args() -> tuple[str | None, str | None]:
    return request.args.get("from") or None, request.args.get("to") or None


def _label(report: Report, label: str) -> str:
    if label:
        return label
    return t("stats.no_group") if report.by is Dimension.GROUP else t("stats.unknown")


@web.get("/stats")
def stats() -> Page:
    svc = service()
    manager = me().role is Role.MANAGER
    figures = compute(
        svc.board.print_history(me()),
        svc.printers.list_printers(),
        svc.members.member_names(me()),
        now=svc.clock(),
        only_member=None if manager else me().id,
    )
    chart = {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_LEFT,
        "top": CHART_TOP,
        "base": CHART_HEIGHT - CHART_BOTTOM,
    }
    first, last = _period_args()
    problem = None
    try:
        period = svc.statistics.period(first, last)
    except Invalid as error:
        problem = t(f"stats.bad_{error.field if error.field in ('from', 'to') else 'from'}")
        period = svc.statistics.period(None, None)
    reports = svc.statistics.reports(me(), period)
    if not any(f.key for f in reports[Dimension.GROUP].rows):
        del reports[Dimension.GROUP]  # the lab has no membership groups
    breakdowns = []
    for by, report in reports.items():
        labels = [_label(report, f.label) for f in report.rows]
        hours = hbar_chart((label, f.hours, 0.0, f"{f.hours:.1f} h") for label, f in zip(labels, report.rows))
        waits = hbar_chart(
            (
                label,
                (f.wait_median_s or 0.0) / 3600,
                (f.wait_p90_s or 0.0) / 3600,
                f"{format_duration(f.wait_median_s)} / {format_duration(f.wait_p90_s)}",
            )
            for label, f in zip(labels, report.rows)
        )
        breakdowns.append(
            {"by": by.value, "report": report, "labels": labels, "hours": hours, "waits": waits}
        )
    return render(
        "stats.html",
        title=t("stats.title"),
        page="stats",
        stats=figures,
        chart=chart,
        period=period,
        period_problem=problem,
        breakdowns=breakdowns,
    )


@web.get("/stats.csv")
def stats_csv() -> Response:
    """The same figures as the API's CSV, for a signed-in person (a member: only their own row by member)."""
    svc = service()
    try:
        by = Dimension(request.args.get("by", "member"))
    except ValueError:
        raise Invalid("by must be one of: " + ", ".join(d.value for d in Dimension), field="by") from None
    first, last = _period_args()
    report = svc.statistics.report(me(), by, svc.statistics.period(first, last))
    name = f"crowdfab-{by.value}-{report.period.first}-{report.period.last}.csv"
    return Response(
        to_csv(report),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, no-cache",
        },
    )


@web.app_template_global()
def day_label(epoch: float) -> str:
    return time.strftime("%d/%m", time.gmtime(epoch))
