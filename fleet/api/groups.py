"""/api/v1 membership groups and quotas: public to members (a member's own quota too); changed by managers."""

from __future__ import annotations

from flask import Response, jsonify

from ..economy.periods import check_period
from ..store.economy import HeldQuota
from .blueprint import body, me, service, spec
from .members import MEMBER
from .shapes import economy as shape

GROUP = "/groups/<int:group_id>"


def currency() -> str:
    return service().lab.settings().currency


@spec.route("GET", "/groups", "The membership groups and their priorities", shape.Groups, errors=(401,))
def list_groups() -> Response:
    groups = service().quotas.groups(me())
    return jsonify(shape.Groups(groups=[shape.Group.of(g) for g in groups]).to_json())


@spec.route(
    "POST",
    "/groups",
    "Add a membership group (managers)",
    shape.Group,
    status=201,
    answer_text="Created",
    errors=(401, 403, 409, 422),
    body=shape.NewGroup,
)
def create_group() -> tuple[Response, int]:
    service().identity.require_manager(me())
    new = body(shape.NewGroup)
    group = service().quotas.create_group(me(), new.name, new.priority)
    return jsonify(shape.Group.of(group).to_json()), 201


@spec.route(
    "PATCH",
    GROUP,
    "Rename a group or change its priority (managers)",
    shape.Group,
    errors=(401, 403, 404, 409, 422),
    body=shape.GroupChanges,
)
def update_group(group_id: int) -> Response:
    service().identity.require_manager(me())
    changes = body(shape.GroupChanges)
    group = service().quotas.update_group(me(), group_id, name=changes.name, priority=changes.priority)
    return jsonify(shape.Group.of(group).to_json())


@spec.route(
    "DELETE",
    GROUP,
    "Remove a group with its quotas (managers); its members stay, in no group",
    None,
    status=204,
    answer_text="Removed",
    errors=(401, 403, 404),
)
def delete_group(group_id: int) -> tuple[str, int]:
    service().identity.require_manager(me())
    service().quotas.delete_group(me(), group_id)
    return "", 204


@spec.route(
    "PUT",
    MEMBER + "/group",
    "Put a member in a group, or in none with null (managers)",
    shape.MemberGroupAnswer,
    errors=(401, 403, 404, 422),
    body=shape.MemberGroup,
)
def set_member_group(member_id: int) -> Response:
    service().identity.require_manager(me())
    group_id = body(shape.MemberGroup).group_id
    svc = service()
    svc.quotas.set_member_group(me(), member_id, group_id)
    group = svc.quotas.group_of(member_id)
    return jsonify(
        shape.MemberGroupAnswer(
            member_id=member_id, group=None if group is None else shape.Group.of(group)
        ).to_json()
    )


@spec.route(
    "GET",
    "/quotas",
    "Every group's quotas, and members' own (a member sees only theirs)",
    shape.Quotas,
    errors=(401,),
)
def list_quotas() -> Response:
    found = service().quotas.quotas(me())
    return jsonify(shape.Quotas(quotas=[shape.Quota.of(q, currency()) for q in found]).to_json())


def _quota_answer(group_id: int | None, member_id: int | None) -> Response:
    wanted = body(shape.QuotaBody)
    quota = service().quotas.set_quota(me(), wanted.data(), group_id=group_id, member_id=member_id)
    return jsonify(shape.Quota.of(HeldQuota(group_id, member_id, quota), currency()).to_json())


@spec.route(
    "PUT",
    GROUP + "/quotas",
    "Set a group's limits for one period, for each of its members (managers)",
    shape.Quota,
    errors=(401, 403, 404, 422),
    body=shape.QuotaBody,
)
def set_group_quota(group_id: int) -> Response:
    service().identity.require_manager(me())
    return _quota_answer(group_id, None)


@spec.route(
    "PUT",
    MEMBER + "/quotas",
    "Set one member's own limits for one period, over their group's (managers)",
    shape.Quota,
    errors=(401, 403, 404, 422),
    body=shape.QuotaBody,
)
def set_member_quota(member_id: int) -> Response:
    service().identity.require_manager(me())
    return _quota_answer(None, member_id)


@spec.route(
    "DELETE",
    GROUP + "/quotas/<period>",
    "Remove a group's limits for one period (managers)",
    None,
    status=204,
    answer_text="Removed",
    errors=(401, 403, 404, 422),
)
def remove_group_quota(group_id: int, period: str) -> tuple[str, int]:
    service().identity.require_manager(me())
    service().quotas.get_group(me(), group_id)
    service().quotas.remove_quota(me(), check_period(period), group_id=group_id)
    return "", 204


@spec.route(
    "DELETE",
    MEMBER + "/quotas/<period>",
    "Remove a member's own limits for one period (managers)",
    None,
    status=204,
    answer_text="Removed",
    errors=(401, 403, 404, 422),
)
def remove_member_quota(member_id: int, period: str) -> tuple[str, int]:
    service().identity.require_manager(me())
    service().members.get_member(me(), member_id)
    service().quotas.remove_quota(me(), check_period(period), member_id=member_id)
    return "", 204


@spec.route(
    "GET",
    MEMBER + "/quota",
    "A member's group, limits and what they used of each this period (itself, or managers)",
    shape.MemberQuota,
    errors=(401, 403, 404),
)
def member_quota(member_id: int) -> Response:
    svc = service()
    svc.members.get_member(me(), member_id)
    caps = svc.quotas.standing(me(), member_id)
    group = svc.quotas.group_of(member_id)
    return jsonify(
        shape.MemberQuota(
            member_id=member_id,
            group=None if group is None else shape.Group.of(group),
            caps=[shape.Standing.of(cap, currency()) for cap in caps],
        ).to_json()
    )
