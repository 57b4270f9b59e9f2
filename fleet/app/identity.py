"""Who is asking: members' API tokens, dashboard passwords and the sessions they open."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from typing import Any, Optional

from werkzeug.security import check_password_hash, generate_password_hash

from ..auth import hash_token
from ..errors import Invalid, NotFound, Unauthorized
from ..models import Member
from .base import Context, require_manager

MIN_PASSWORD = 8
MAX_PASSWORD = 1024
WRONG_SIGN_IN = "wrong name or password"
#: Printer HTTP tokens carry their own prefix, so neither kind is mistaken for the other.
PRINTER_TOKEN_PREFIX = "cfp_"  # noqa: S105 (a prefix, not a secret)


def check_password(value: Any) -> str:
    """A new password's length: the API's body and the dashboard's form both check it here."""
    if not isinstance(value, str) or not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise Invalid(
            f"password must be text of {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password"
        )
    return value


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked against when a name is unknown, so a wrong name takes as long as a wrong password."""
    return generate_password_hash(secrets.token_urlsafe(16), method="scrypt")


class Identity:
    """Turns a token, a password or a session into a member, or refuses with one clear message."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def authenticate(self, token: Optional[str]) -> Member:
        if not token:
            raise Unauthorized("sign in: send your API token as 'Authorization: Bearer <token>'")
        if token.startswith(PRINTER_TOKEN_PREFIX):
            raise Unauthorized("this is a printer's token; this endpoint needs a member's API token")
        member = self.store.member_for_token(hash_token(token), now=self.ctx.clock())
        if member is None:
            raise Unauthorized("this API token is not valid (revoked, or the member is deactivated)")
        return member

    @staticmethod
    def require_manager(actor: Member) -> None:
        require_manager(actor)

    def set_password(self, actor: Member, member_id: int, password: str) -> None:
        """Set the password a member signs in to the dashboard with (the member, or a manager)."""
        if actor.id != member_id:
            require_manager(actor)
        check_password(password)
        self.store.get_member(member_id)
        self.store.set_password_hash(member_id, generate_password_hash(password, method="scrypt"))

    def sign_in(self, name: str, password: str) -> Member:
        """The member whose name and password these are; one message for every failure, so none leaks."""
        found = self.store.member_with_password(name) if isinstance(name, str) else None
        stored = found[1] if found is not None else None
        # An unknown name costs the same hash as a known one, so timing does not tell them apart.
        matches = check_password_hash(stored or _dummy_hash(), password if isinstance(password, str) else "")
        if found is None or stored is None or not matches or not found[0].active:
            raise Unauthorized(WRONG_SIGN_IN)
        return found[0]

    def password_stamp(self, member_id: int) -> str:
        """A short fingerprint of a member's password: a session carries it, and a new password ends it."""
        stored = self.store.password_hash(member_id) or ""
        return hashlib.sha256(stored.encode("utf-8")).hexdigest()[:16]

    def session_member(self, member_id: int, stamp: str) -> Member:
        """The member a dashboard session belongs to, while it is active and its password unchanged."""
        try:
            member = self.store.get_member(member_id)
        except NotFound:
            raise Unauthorized("sign in again") from None
        if not member.active or not hmac.compare_digest(stamp, self.password_stamp(member_id)):
            raise Unauthorized("sign in again")
        return member
