"""Members, their API tokens and dashboard passwords."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

from sqlalchemy import delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, Invalid, NotFound
from ..models import CodeRefusal, Member, Role
from . import rows
from . import schema as s
from .base import UNSET, StoreBase, _insert, _Unset
from .blobs import is_sha256_hex
from .engine import read_transaction, write_transaction

#: How long a spent or expired link code is kept after it expires, to say which it was when typed again.
SPENT_CODES_KEPT_S = 86400.0


@dataclass(frozen=True)
class ApiToken:
    """A member's API token as stored: its hash, never the token."""

    token_hash: str
    member_id: int
    label: str
    created_at: float
    last_used_at: Optional[float]
    #: A device's sign-in (an OctoPrint user on a printer), not the member's own API token.
    device: bool = False


class MemberRecords(StoreBase):
    """Members and how they sign in."""

    # -- members and tokens -------------------------------------------------------------------

    def create_member(
        self, name: str, role: Role, *, requires_approval: Optional[bool] = None, now: float
    ) -> Member:
        """Add a member; :class:`Conflict` if the name is taken."""
        values = {
            "name": name,
            "role": Role(role).value,
            "requires_approval": requires_approval,
            "active": True,
            "created_at": now,
        }
        try:
            with write_transaction(self._engine) as conn:
                self._refuse_taken_name(conn, name)
                member_id = _insert(conn, s.members, values)
                return self._member(conn, member_id)
        except IntegrityError as exc:
            # Another process took the name between our check and our insert.
            raise self._name_taken(name) from exc

    def get_member(self, member_id: int) -> Member:
        with read_transaction(self._engine) as conn:
            return self._member(conn, member_id)

    def get_member_by_name(self, name: str) -> Member:
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(s.members).where(s.members.c.name == name)).first()
        if row is None:
            raise NotFound(f"there is no member named {name!r}", field="name")
        return rows.member(row)

    def list_members(self) -> list[Member]:
        with read_transaction(self._engine) as conn:
            found = conn.execute(select(s.members).order_by(s.members.c.id)).all()
        return [rows.member(row) for row in found]

    def update_member(
        self,
        member_id: int,
        *,
        role: Optional[Role] = None,
        requires_approval: Union[Optional[bool], _Unset] = UNSET,
        active: Optional[bool] = None,
    ) -> Member:
        """Change a member's role, approval override (None follows the lab) or active flag."""
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = Role(role).value
        if requires_approval is not UNSET:
            values["requires_approval"] = requires_approval
        if active is not None:
            values["active"] = bool(active)
        with write_transaction(self._engine) as conn:
            member = self._member(conn, member_id)
            if not values:
                return member
            conn.execute(update(s.members).where(s.members.c.id == member_id).values(values))
            return self._member(conn, member_id)

    def add_token(
        self, member_id: int, token_hash: str, label: str, now: float, *, device: bool = False
    ) -> None:
        """Store the SHA-256 (hex) of a new API token for a member (``device``: a device's sign-in)."""
        if not is_sha256_hex(token_hash):
            raise Invalid("token_hash must be the SHA-256 of the token in lowercase hex", field="token_hash")
        try:
            with write_transaction(self._engine) as conn:
                self._member(conn, member_id)
                taken = conn.execute(
                    select(exists().where(s.api_tokens.c.token_hash == token_hash))
                ).scalar_one()
                if taken:
                    raise Conflict("this token is already registered", field="token_hash")
                conn.execute(
                    insert(s.api_tokens).values(
                        token_hash=token_hash,
                        member_id=member_id,
                        label=label,
                        created_at=now,
                        device=device,
                    )
                )
        except IntegrityError as exc:
            raise Conflict("this token is already registered", field="token_hash") from exc

    def member_for_token(self, token_hash: str, now: float) -> Optional[Member]:
        """The active member a token belongs to (noting the token was used), or None."""
        query = (
            select(s.members)
            .join(s.api_tokens, s.api_tokens.c.member_id == s.members.c.id)
            .where(s.api_tokens.c.token_hash == token_hash, s.members.c.active.is_(True))
        )
        with write_transaction(self._engine) as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            conn.execute(
                update(s.api_tokens).where(s.api_tokens.c.token_hash == token_hash).values(last_used_at=now)
            )
            return rows.member(row)

    def list_tokens(self, member_id: int) -> list[ApiToken]:
        """A member's tokens (hashes and labels), oldest first."""
        with read_transaction(self._engine) as conn:
            found = conn.execute(
                select(s.api_tokens)
                .where(s.api_tokens.c.member_id == member_id)
                .order_by(s.api_tokens.c.created_at, s.api_tokens.c.token_hash)
            ).all()
        return [
            ApiToken(row.token_hash, row.member_id, row.label, row.created_at, row.last_used_at, row.device)
            for row in found
        ]

    def revoke_tokens(self, member_id: int, *, devices: bool = True) -> int:
        """Delete a member's tokens (``devices=False``: its own API tokens only, not the device sign-ins);
        returns how many there were."""
        tokens = s.api_tokens.c
        with write_transaction(self._engine) as conn:
            which = delete(s.api_tokens).where(tokens.member_id == member_id)
            if not devices:
                which = which.where(tokens.device.is_(False))
            result = conn.execute(which)
            return result.rowcount

    def revoke_token(self, member_id: int, token_hash: str) -> bool:
        """Delete one of a member's tokens (another member's is left alone); False when none matched."""
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                delete(s.api_tokens).where(
                    s.api_tokens.c.member_id == member_id, s.api_tokens.c.token_hash == token_hash
                )
            )
            return bool(result.rowcount)

    def add_link_code(self, member_id: int, code_hash: str, *, now: float, expires_at: float) -> None:
        """Store the SHA-256 (hex) of a member's new link code; the member's older codes are dropped."""
        if not is_sha256_hex(code_hash):
            raise Invalid("code_hash must be the SHA-256 of the code in lowercase hex", field="code_hash")
        try:
            with write_transaction(self._engine) as conn:
                self._member(conn, member_id)
                conn.execute(delete(s.link_codes).where(s.link_codes.c.member_id == member_id))
                conn.execute(
                    insert(s.link_codes).values(
                        code_hash=code_hash, member_id=member_id, created_at=now, expires_at=expires_at
                    )
                )
        except IntegrityError as exc:
            raise Conflict("this link code is already registered", field="code_hash") from exc

    def spend_link_code(self, code_hash: str, *, now: float) -> Optional[Member]:
        """The active member whose unexpired, unused code this is, the code marked used so it works once;
        else None (:meth:`link_code_refusal` says why). Codes expired for a day are forgotten."""
        codes = s.link_codes.c
        with write_transaction(self._engine) as conn:
            member_id = conn.execute(
                select(codes.member_id).where(
                    codes.code_hash == code_hash, codes.expires_at > now, codes.used_at.is_(None)
                )
            ).scalar_one_or_none()
            # Marking it used is what spends it: of two requests racing with one code, one updates it.
            spent = conn.execute(
                update(s.link_codes)
                .where(codes.code_hash == code_hash, codes.used_at.is_(None), codes.expires_at > now)
                .values(used_at=now)
            ).rowcount
            conn.execute(delete(s.link_codes).where(codes.expires_at <= now - SPENT_CODES_KEPT_S))
            if member_id is None or not spent:
                return None
            member = self._member(conn, member_id)
            return member if member.active else None

    def link_code_refusal(self, code_hash: str, *, now: float) -> CodeRefusal:
        """Why this link code signs nobody in: unknown (or withdrawn), already used, or expired."""
        codes = s.link_codes.c
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                select(codes.used_at, codes.expires_at).where(codes.code_hash == code_hash)
            ).first()
        return CodeRefusal.of(None if row is None else (row.used_at, row.expires_at), now)

    def set_password_hash(self, member_id: int, password_hash: Optional[str]) -> None:
        """Store a member's password hash (None: no password, so no sign-in to the dashboard)."""
        with write_transaction(self._engine) as conn:
            self._member(conn, member_id)
            conn.execute(
                update(s.members).where(s.members.c.id == member_id).values(password_hash=password_hash)
            )

    def password_hash(self, member_id: int) -> Optional[str]:
        """A member's stored password hash, or None when none is set."""
        with read_transaction(self._engine) as conn:
            value = conn.execute(
                select(s.members.c.password_hash).where(s.members.c.id == member_id)
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def member_with_password(self, name: str) -> Optional[tuple[Member, Optional[str]]]:
        """The member of that name and its password hash, or None when there is no such member."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(select(s.members).where(s.members.c.name == name)).first()
        if row is None:
            return None
        return rows.member(row), row.password_hash
