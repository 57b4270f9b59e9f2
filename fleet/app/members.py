"""The lab's members: who they are, their API tokens, and the restricted printers granted to them."""

from __future__ import annotations

from typing import Optional

from ..auth import hash_token, new_token
from ..errors import Conflict, NotFound
from ..models import CodeRefusal, Member, MemberChanges, Page, Role, asked_changes
from ..store.members import ApiToken
from .base import Context, require_manager
from .checks import check_member_name
from .enrollment import code_refused, new_enrollment_code, normalize_code

#: How long a link code from the dashboard's account page may wait to be typed in.
LINK_CODE_TTL_S = 600.0
#: What a refused link code is told, by why (``details.reason`` of the answer says which, for a program).
LINK_CODE_REFUSALS = {
    CodeRefusal.UNKNOWN: "this link code is not known (mistyped, or replaced by a newer one): "
    "check it, or make a new one on your account page",
    CodeRefusal.USED: "this link code was already used to sign a device in: a code works once; "
    "make a new one on your account page",
    CodeRefusal.EXPIRED: "this link code has expired (a code waits ten minutes): "
    "make a new one on your account page",
}


class Members:
    """Adding, changing and granting members: a manager's work (a member may see and re-key themselves)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def add_member(
        self, name: str, role: Role = Role.MEMBER, *, requires_approval: Optional[bool] = None
    ) -> tuple[Member, str]:
        """Create a member and return it with its API token: the only time the token is shown."""
        check_member_name(name)
        now = self.ctx.clock()
        member = self.store.create_member(name, role, requires_approval=requires_approval, now=now)
        token = new_token()
        self.store.add_token(member.id, hash_token(token), "initial", now=now)
        return member, token

    def create_member(
        self, actor: Member, name: str, role: Role, *, requires_approval: Optional[bool] = None
    ) -> tuple[Member, str]:
        require_manager(actor)
        return self.add_member(name, role, requires_approval=requires_approval)

    def list_members(self, actor: Member) -> list[Member]:
        require_manager(actor)
        return self.store.list_members()

    def member_page(
        self, actor: Member, *, after: Optional[int] = None, limit: int = 100
    ) -> Page[Member, int]:
        """A page of the members in id order (managers)."""
        require_manager(actor)
        return self.store.member_page(after=after, limit=limit)

    def get_member(self, actor: Member, member_id: int) -> Member:
        if actor.id != member_id:
            require_manager(actor)
        return self.store.get_member(member_id)

    def update_member(self, actor: Member, member_id: int, changes: MemberChanges) -> Member:
        require_manager(actor)
        if member_id == actor.id and (changes.role is Role.MEMBER or changes.active is False):
            raise Conflict("a manager cannot demote or deactivate themselves; ask another manager")
        return self.store.update_member(member_id, **asked_changes(changes))

    def new_token_for(self, actor: Member, member_id: int) -> str:
        """Revoke a member's own API token and issue a fresh one (a lost or leaked token).

        The member's device sign-ins (an OctoPrint user on a printer) keep working: each is listed and
        revoked on its own on the account page, so replacing the token does not sign every printer out.
        """
        if actor.id != member_id:
            require_manager(actor)
        self.store.get_member(member_id)
        self.store.revoke_tokens(member_id, devices=False)
        token = new_token()
        self.store.add_token(member_id, hash_token(token), "reissued", now=self.ctx.clock())
        return token

    def issue_named_token(self, member: Member, label: str) -> str:
        """A device's sign-in for ``member`` under ``label`` (one per device or app); its others keep
        working, and replacing the member's own API token leaves it be."""
        token = new_token()
        self.store.add_token(member.id, hash_token(token), label, now=self.ctx.clock(), device=True)
        return token

    def tokens_of(self, actor: Member, member_id: int) -> list[ApiToken]:
        """A member's tokens, hashes and labels only (the member itself, or managers)."""
        if actor.id != member_id:
            require_manager(actor)
        self.store.get_member(member_id)
        return self.store.list_tokens(member_id)

    def revoke_token(self, actor: Member, member_id: int, token_id: str) -> None:
        """Revoke one token of a member (the member itself, or managers); the others keep working."""
        if actor.id != member_id:
            require_manager(actor)
        self.store.get_member(member_id)
        if not self.store.revoke_token(member_id, token_id):
            raise NotFound(f"member {member_id} has no token {token_id!r}", field="token_id")

    def create_link_code(self, actor: Member) -> tuple[str, float]:
        """A single-use code that signs one device in as ``actor``, and when it expires; kept only hashed.

        Making a new one withdraws the member's previous code, so at most one is ever waiting.
        """
        code = new_enrollment_code()
        normalized = normalize_code(code)
        assert normalized is not None
        now = self.ctx.clock()
        expires_at = now + LINK_CODE_TTL_S
        self.store.add_link_code(actor.id, hash_token(normalized), now=now, expires_at=expires_at)
        return code, expires_at

    def spend_link_code(self, code: str) -> Member:
        """The member a link code belongs to; the code works once, until it expires."""
        normalized = normalize_code(code) if isinstance(code, str) else None
        if normalized is None:
            raise code_refused(CodeRefusal.UNKNOWN, LINK_CODE_REFUSALS, "link_code")
        now = self.ctx.clock()
        member = self.store.spend_link_code(hash_token(normalized), now=now)
        if member is None:
            why = self.store.link_code_refusal(hash_token(normalized), now=now)
            raise code_refused(why, LINK_CODE_REFUSALS, "link_code")
        return member

    def grant(self, actor: Member, member_id: int, printer_id: str) -> None:
        require_manager(actor)
        self.store.get_member(member_id)
        self.store.get_printer(printer_id)
        self.store.grant(member_id, printer_id)

    def revoke_grant(self, actor: Member, member_id: int, printer_id: str) -> None:
        require_manager(actor)
        self.store.revoke_grant(member_id, printer_id)

    def grants_for(self, actor: Member, member_id: int) -> frozenset[str]:
        if actor.id != member_id:
            require_manager(actor)
        return self.store.grants_for(member_id)

    def all_grants(self, actor: Member) -> dict[int, frozenset[str]]:
        """Every member's granted printers (a manager's view)."""
        require_manager(actor)
        return self.store.grants()

    def member_names(self, actor: Member) -> dict[int, str]:
        """Members' names by id: every member's for a manager, only their own for anyone else."""
        if actor.role is Role.MANAGER:
            return {m.id: m.name for m in self.store.list_members()}
        return {actor.id: actor.name}
