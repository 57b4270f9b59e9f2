"""/api/v1 prices and the ledger: the price list (public to members), a job's cost, charges, a month's CSV."""

from __future__ import annotations

from flask import Response, jsonify

from ..models import Role
from .blueprint import body, me, query, service, spec
from .jobs import JOB
from .shapes import economy as shape
from .shapes.base import next_cursor

CSV: dict[str, object] = {"content": {"text/csv": {"schema": {"type": "string"}}}}


@spec.route("GET", "/prices", "The lab's price list (every member may read it)", shape.Prices, errors=(401,))
def get_prices() -> Response:
    prices, list_id, currency = service().pricing.price_list(me())
    return jsonify(shape.Prices.of(prices, list_id, currency).to_json())


@spec.route(
    "PUT",
    "/prices",
    "Replace the price list (managers); earlier lists stay, for the charges made with them",
    shape.Prices,
    errors=(401, 403, 422),
    body=shape.PricesBody,
)
def set_prices() -> Response:
    service().identity.require_manager(me())  # who may, before what they sent
    wanted = body(shape.PricesBody).value()
    prices, list_id = service().pricing.set_price_list(me(), wanted.to_dict())
    return jsonify(shape.Prices.of(prices, list_id, service().lab.settings().currency).to_json())


@spec.route(
    "GET",
    JOB + "/cost",
    "A job's estimated cost at today's prices, and its charge once it ended (its member, or managers)",
    shape.JobCost,
    errors=(401, 403, 404),
)
def job_cost(job_id: int) -> Response:
    svc = service()
    job = svc.jobs.get_job(me(), job_id)
    charge = svc.pricing.charges_by_job(me(), [job_id]).get(job_id)
    return jsonify(
        shape.JobCost(
            job_id=job_id,
            estimate=shape.Cost.of(svc.pricing.job_estimate(me(), job)),
            charge=None if charge is None else shape.LedgerLine.of(charge),
        ).to_json()
    )


@spec.route(
    "GET",
    "/ledger",
    "Charges a page at a time, oldest first: your own; managers anyone's (member_id) or everyone's",
    shape.Ledger,
    errors=(401, 403, 422),
    query=shape.LedgerQuery,
)
def ledger() -> Response:
    asked = query(shape.LedgerQuery)
    member_id = asked.member_id
    if member_id is None and me().role is not Role.MANAGER:
        member_id = me().id
    page = service().pricing.ledger(
        me(), member_id=member_id, month=asked.month, after=asked.cursor, limit=asked.limit
    )
    return jsonify(
        shape.Ledger(
            charges=[shape.LedgerLine.of(e) for e in page.items], next_cursor=next_cursor(page.next_after)
        ).to_json()
    )


@spec.route(
    "GET",
    "/ledger/export",
    "Every charge of one month of the lab's calendar as CSV, one row a line (managers)",
    CSV,
    answer_text="The month's charges as CSV, amounts in the lab's currency",
    errors=(401, 403, 422),
    query=shape.MonthQuery,
)
def ledger_export() -> Response:
    service().identity.require_manager(me())  # who may, before what they sent
    month = query(shape.MonthQuery).month
    text = service().pricing.month_csv(me(), month)
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="ledger-{month}.csv"'},
    )


@spec.route(
    "POST",
    JOB + "/lift-quotas",
    "Let one waiting job past its member's quotas (managers); its history records who did",
    shape.LiftAnswer,
    errors=(401, 403, 404, 409),
)
def lift_quotas(job_id: int) -> Response:
    service().identity.require_manager(me())
    job = service().quotas.lift(me(), job_id)
    return jsonify(shape.LiftAnswer(job_id=job.id, state=job.state.value, quota_lifted=True).to_json())
