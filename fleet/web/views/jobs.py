"""The queue and each job's page, with what members and managers may do to a job."""

from __future__ import annotations

from typing import Any, Callable

from flask import Response, abort, flash, g, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ...errors import NotFound
from ...models import Member, Role
from ...scheduler import WaitReason
from ...states import CANCELLABLE, PENDING, JobState
from ..cards import thumbnail
from .base import Page, back, me, render, service, t, viewer_context, web
from .economy import cost_lines, money


@web.get("/queue")
def queue() -> Page:
    entries = service().dispatcher.queue(me())
    context = {"entries": entries, **viewer_context()}
    if request.args.get("part") == "list":
        return render("_queue_list.html", **context)
    return render("queue.html", title=t("queue.title"), page="queue", **context)


@web.get("/jobs/<int:job_id>")
def job(job_id: int) -> Page:
    svc = service()
    found = svc.jobs.get_job(me(), job_id)
    history = svc.jobs.job_history(me(), job_id)
    explanation = None
    if found.state in (JobState.SUBMITTED, JobState.AWAITING_APPROVAL, JobState.QUEUED):
        explanation = next((e.explanation for e in svc.dispatcher.queue(me()) if e.job.id == job_id), None)
    manager = me().role is Role.MANAGER
    held = None
    if explanation is not None and explanation.reason is WaitReason.QUOTA:
        held = svc.dispatcher.hold_words(me(), job_id, g.get("lang", "en"))
    lifted = found.state in PENDING and svc.quotas.is_lifted(me(), job_id)
    charge = svc.pricing.charges_by_job(me(), [job_id]).get(job_id)
    cost = charge.charge if charge is not None else svc.pricing.job_estimate(me(), found)
    actions = []
    if manager and found.state is JobState.AWAITING_APPROVAL:
        actions += ["approve", "reject"]
    if found.state is JobState.PRINTING:
        actions.append("pause")
    if found.state is JobState.PAUSED:
        actions.append("resume")
    if found.state in CANCELLABLE:
        actions.append("cancel")
    return render(
        "job.html",
        title=t("job.title", id=job_id),
        page="queue",
        job=found,
        history=history,
        explanation=explanation,
        held=held,
        can_lift=manager and found.state in PENDING and not lifted,
        lifted=lifted,
        charged=charge is not None,
        cost_total=money(cost.total_minor, cost.currency),
        cost_lines=cost_lines(cost),
        actions=actions,
        has_thumbnail=thumbnail(found) is not None,
        has_snapshot=svc.snapshots.has_snapshot(me(), job_id),
        **viewer_context(),
    )


@web.get("/jobs/<int:job_id>/thumbnail")
def job_thumbnail(job_id: int) -> Response:
    found = thumbnail(service().jobs.get_job(me(), job_id))
    if found is None:
        raise NotFound(f"job {job_id}'s file has no preview image", key="no_thumbnail")
    data, mime = found
    return Response(data, mimetype=mime, headers={"Cache-Control": "private, max-age=3600"})


@web.get("/jobs/<int:job_id>/snapshot")
def job_snapshot(job_id: int) -> Response:
    found = service().snapshots.for_job(me(), job_id)
    return Response(found.data, mimetype=found.media_type, headers={"Cache-Control": "private, no-cache"})


def _job_actions() -> dict[str, Callable[[Member, int], Any]]:
    svc = service()
    reason = request.form.get("reason", "")
    return {
        "approve": svc.jobs.approve_job,
        "reject": lambda actor, job_id: svc.jobs.reject_job(actor, job_id, reason),
        "pause": svc.jobs.pause_job,
        "resume": svc.jobs.resume_job,
        "cancel": lambda actor, job_id: svc.jobs.cancel_job(actor, job_id, reason),
    }


@web.post("/jobs/<int:job_id>/<action>")
def job_action(job_id: int, action: str) -> BaseResponse:
    act = _job_actions().get(action)
    if act is None:
        abort(404)
    act(me(), job_id)
    flash(t(f"flash.{action}", id=job_id), "ok")
    return back(url_for("web.job", job_id=job_id))
