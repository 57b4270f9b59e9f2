"""/api/v1 members: add and change them, their tokens, passwords and printer grants."""

from __future__ import annotations

from flask import Response, jsonify

from ..auth import hash_token
from ..errors import Unauthorized
from ..models import Member
from .blueprint import (
    PUBLIC,
    body,
    client_address,
    limits,
    me,
    query,
    refuse_while_limited,
    service,
    sign_in_limiter,
    spec,
)
from .shapes import members as shape
from .shapes.base import PageQuery, next_cursor

MEMBER = "/members/<int:member_id>"
GRANT = MEMBER + "/printers/<printer_id>"


@spec.route(
    "GET",
    "/members",
    "The members a page at a time, in id order (managers)",
    shape.Members,
    errors=(401, 403, 422),
    query=PageQuery,
)
def list_members() -> Response:
    service().identity.require_manager(me())  # who may, before what they sent
    asked = query(PageQuery)
    page = service().members.member_page(me(), after=asked.cursor, limit=asked.limit)
    return jsonify(
        members=[shape.Member.of(m).to_json() for m in page.items], next_cursor=next_cursor(page.next_after)
    )


@spec.route(
    "POST",
    "/members",
    "Add a member (managers); the response holds its API token, shown only this once",
    shape.NewMemberAnswer,
    status=201,
    answer_text="Created",
    errors=(401, 403, 409, 422),
    body=shape.NewMember,
)
def create_member() -> tuple[Response, int]:
    service().identity.require_manager(me())  # who may, before what they sent
    new = body(shape.NewMember)
    member, token = service().members.create_member(
        me(), new.name, new.role, requires_approval=new.requires_approval
    )
    return jsonify(shape.NewMemberAnswer(**shape.Member.of(member).model_dump(), token=token).to_json()), 201


@spec.route(
    "GET",
    MEMBER,
    "A member and the printers granted to it (itself, or managers)",
    shape.MemberWithPrinters,
    errors=(401, 403, 404),
)
def get_member(member_id: int) -> Response:
    svc = service()
    member = shape.Member.of(svc.members.get_member(me(), member_id))
    printers = sorted(svc.members.grants_for(me(), member_id))
    return jsonify(shape.MemberWithPrinters(**member.model_dump(), printers=printers).to_json())


@spec.route(
    "PATCH",
    MEMBER,
    "Change a member's role, approval setting or active flag (managers)",
    shape.Member,
    errors=(401, 403, 404, 409, 422),
    body=shape.MemberChanges,
)
def update_member(member_id: int) -> Response:
    service().identity.require_manager(me())  # who may, before what they sent
    changes = body(shape.MemberChanges).value()
    return jsonify(shape.Member.of(service().members.update_member(me(), member_id, changes)).to_json())


@spec.route(
    "POST",
    MEMBER + "/token",
    "Revoke a member's tokens and issue a new one (itself, or managers)",
    shape.Token,
    errors=(401, 403, 404),
)
def reissue_token(member_id: int) -> Response:
    return jsonify(shape.Token(token=service().members.new_token_for(me(), member_id)).to_json())


@spec.route(
    "PUT",
    MEMBER + "/password",
    "Set the password a member signs in to the dashboard with (itself, or managers)",
    None,
    status=204,
    answer_text="The password is set; the member's other dashboard sessions end",
    errors=(401, 403, 404, 422),
    body=shape.NewPassword,
)
def set_password(member_id: int) -> tuple[str, int]:
    if member_id != me().id:
        service().identity.require_manager(me())  # who may, before what they sent
    service().identity.set_password(me(), member_id, body(shape.NewPassword).password)
    return "", 204


@spec.route("PUT", GRANT, "Grant a printer to a member (managers)", shape.Grants, errors=(401, 403, 404))
def grant_printer(member_id: int, printer_id: str) -> Response:
    svc = service()
    svc.members.grant(me(), member_id, printer_id)
    return jsonify(shape.Grants(printers=sorted(svc.members.grants_for(me(), member_id))).to_json())


@spec.route(
    "DELETE", GRANT, "Withdraw a printer from a member (managers)", shape.Grants, errors=(401, 403, 404)
)
def revoke_printer(member_id: int, printer_id: str) -> Response:
    svc = service()
    svc.members.revoke_grant(me(), member_id, printer_id)
    return jsonify(shape.Grants(printers=sorted(svc.members.grants_for(me(), member_id))).to_json())


@spec.route(
    "POST",
    "/tokens",
    "Sign in with a member's name and password, or a link code from the account page, for a new named "
    "token, shown only this once (the member's other tokens keep working); wrong tries are limited",
    shape.NamedToken,
    status=201,
    answer_text="Created",
    errors=(401, 422, 429),
    body=shape.SignIn,
    security=PUBLIC,
)
def sign_in_for_token() -> tuple[Response, int]:
    asked = body(shape.SignIn)
    member = _by_link_code(asked.link_code) if asked.link_code is not None else _by_password(asked)
    token = service().members.issue_named_token(member, asked.label)
    answer = shape.NamedToken(token=token, id=hash_token(token), label=asked.label)
    return jsonify(answer.to_json()), 201


def _by_password(asked: shape.SignIn) -> Member:
    assert asked.name is not None and asked.password is not None
    limiter = sign_in_limiter()
    # Counted with the dashboard's sign-in: the same name from the same address, whichever door.
    key = (asked.name.lower(), client_address())
    refuse_while_limited(limiter, "wrong sign-ins", key=key)
    try:
        member = service().identity.sign_in(asked.name, asked.password)
    except Unauthorized:
        limiter.failed(key)
        raise
    limiter.succeeded(key)
    return member


def _by_link_code(code: str) -> Member:
    limiter = limits().link_codes
    refuse_while_limited(limiter, "wrong link codes")
    try:
        return service().members.spend_link_code(code)
    except Unauthorized:
        limiter.failed(client_address())
        raise


@spec.route(
    "GET",
    MEMBER + "/tokens",
    "A member's tokens: names and when they were made and last used, never the tokens (itself, or managers)",
    shape.Tokens,
    errors=(401, 403, 404),
)
def list_tokens(member_id: int) -> Response:
    found = service().members.tokens_of(me(), member_id)
    infos = [
        shape.TokenInfo(
            id=t.token_hash,
            label=t.label,
            created_at=t.created_at,
            last_used_at=t.last_used_at,
            device=t.device,
        )
        for t in found
    ]
    return jsonify(shape.Tokens(tokens=infos).to_json())


@spec.route(
    "DELETE",
    MEMBER + "/tokens/<token_id>",
    "Revoke one of a member's tokens; the others keep working (itself, or managers)",
    None,
    status=204,
    answer_text="Revoked: requests with that token are refused from now on",
    errors=(401, 403, 404),
)
def revoke_token(member_id: int, token_id: str) -> tuple[str, int]:
    service().members.revoke_token(me(), member_id, token_id)
    return "", 204
