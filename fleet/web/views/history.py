"""The print history and statistics page."""

from __future__ import annotations

import time

from ...models import Role
from ..stats import CHART_BOTTOM, CHART_HEIGHT, CHART_LEFT, CHART_TOP, CHART_WIDTH, compute
from .base import Page, me, render, service, t, web


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
    return render("stats.html", title=t("stats.title"), page="stats", stats=figures, chart=chart)


@web.app_template_global()
def day_label(epoch: float) -> str:
    return time.strftime("%d/%m", time.gmtime(epoch))
