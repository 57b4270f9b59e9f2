"""Signing in and out, the page's language, and a member's own account."""

from __future__ import annotations

import math
from typing import Any, Union

from flask import flash, g, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from ...errors import Invalid, NotFound, Unauthorized
from .base import LANG_COOKIE, Page, back, dashboard, me, render, safe_next, service, t, web


@web.route("/signin", methods=["GET", "POST"])
def sign_in() -> Union[Page, BaseResponse]:
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if g.member is not None:
            return redirect(target)
        return render("signin.html", title=t("signin.title"), next=target, name="")
    name = request.form.get("name", "").strip()
    key = (name.lower(), request.remote_addr)
    limiter = dashboard().limiter
    wait = limiter.wait_s(key)
    if wait > 0:
        error = t("signin.too_many", minutes=max(1, math.ceil(wait / 60)))
        page, status = render(
            "signin.html", 429, title=t("signin.title"), next=target, name=name, error=error
        )
        return page, status, {"Retry-After": str(math.ceil(wait))}
    try:
        member = service().identity.sign_in(name, request.form.get("password", ""))
    except Unauthorized:
        limiter.failed(key)
        error = t("signin.wrong")
        return render("signin.html", 401, title=t("signin.title"), next=target, name=name, error=error)
    limiter.succeeded(key)
    session.clear()  # a fresh session (and CSRF token) for the signed-in member
    session["member_id"] = member.id
    session["stamp"] = service().identity.password_stamp(member.id)
    return redirect(target, 303)


@web.post("/signout")
def sign_out() -> BaseResponse:
    session.clear()
    return redirect(url_for("web.sign_in"), 303)


@web.post("/language")
def language() -> BaseResponse:
    chosen = request.form.get("lang", "")
    response = back("/")
    if chosen in dashboard().catalogue.languages:
        response.set_cookie(
            LANG_COOKIE, chosen, max_age=365 * 86400, samesite="Lax", httponly=True, secure=request.is_secure
        )
    return response


@web.route("/account", methods=["GET", "POST"])
def account() -> Union[Page, BaseResponse]:
    if request.method == "GET":
        return account_page()
    current, new, again = (request.form.get(k, "") for k in ("current", "password", "again"))
    key = (me().name.lower(), request.remote_addr)
    limiter = dashboard().limiter
    error = None
    if limiter.wait_s(key) > 0:
        error = t("signin.too_many", minutes=max(1, math.ceil(limiter.wait_s(key) / 60)))
    elif new != again:
        error = t("account.mismatch")
    else:
        try:
            service().identity.sign_in(me().name, current)
        except Unauthorized:
            limiter.failed(key)
            error = t("account.wrong_current")
    if error is None:
        try:
            service().identity.set_password(me(), me().id, new)
        except Invalid:
            error = t("account.too_short")
    if error is not None:
        return account_page(422, error=error)
    session["stamp"] = service().identity.password_stamp(me().id)
    flash(t("account.changed"), "ok")
    return redirect(url_for("web.account"), 303)


def account_page(status: int = 200, **context: Any) -> Page:
    """The account page: the password form, the member's tokens (names only) and the link-code button."""
    tokens = service().members.tokens_of(me(), me().id)
    notify = service().notifications.profile(me(), default_language=g.lang)
    return render("account.html", status, title=t("account.title"), tokens=tokens, notify=notify, **context)


@web.post("/account/link-code")
def link_code() -> Page:
    """A fresh code that signs one device in as this member; shown on this page, this once."""
    code, expires_at = service().members.create_link_code(me())
    return account_page(link_code=code, link_expires_at=expires_at)


@web.post("/account/tokens/revoke")
def revoke_token() -> BaseResponse:
    """Revoke one of the member's own tokens: the device that kept it is signed out of the fleet."""
    token_id = request.form.get("token", "")
    try:
        service().members.revoke_token(me(), me().id, token_id)
    except NotFound:
        flash(t("account.token_gone"), "error")
    else:
        flash(t("account.token_revoked"), "ok")
    return redirect(url_for("web.account"), 303)
