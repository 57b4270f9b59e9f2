"""/api/v1 statistics: a period's breakdown by member, group, printer or material, as JSON or CSV."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from ..statistics import Report, to_csv
from .blueprint import me, query, service, spec
from .shapes import stats as shape

CSV: dict[str, Any] = {"content": {"text/csv": {"schema": {"type": "string"}}}}


def _report() -> Report:
    asked = query(shape.StatsQuery)
    statistics = service().statistics
    return statistics.report(me(), asked.by, statistics.period(asked.first, asked.last))


@spec.route(
    "GET",
    "/stats",
    "The lab's statistics over whole days: a manager sees every member, a member only their own row by "
    "member; printers, materials, groups and the totals are the lab's",
    shape.StatsReport,
    errors=(401, 422),
    query=shape.StatsQuery,
)
def stats() -> Response:
    return jsonify(shape.StatsReport.of(_report()).to_json())


@spec.route(
    "GET",
    "/stats.csv",
    "The same as CSV, one line per row and one for the lab's total",
    CSV,
    answer_text="CSV, with a header line",
    errors=(401, 422),
    query=shape.StatsQuery,
)
def stats_csv() -> Response:
    report = _report()
    name = f"crowdfab-{report.by.value}-{report.period.first}-{report.period.last}.csv"
    return Response(
        to_csv(report),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, no-cache",
        },
    )
