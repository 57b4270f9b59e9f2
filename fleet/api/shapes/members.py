"""Members: who they are, what a manager sends to add or change one, tokens and passwords."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Optional

from pydantic import BeforeValidator, Field, model_validator

from ... import models
from ...app.checks import NAME_RE, check_member_name
from ...app.identity import MAX_PASSWORD, MIN_PASSWORD, check_password
from ...errors import Invalid
from .base import InputModel, Maybe, OutputModel, Timestamp


class Member(OutputModel):
    id: int
    name: str
    role: models.Role
    requires_approval: Optional[bool] = Field(
        description="None follows the lab's setting; true or false overrides it for this member"
    )
    active: bool
    created_at: Timestamp

    @classmethod
    def of(cls, member: models.Member) -> Member:
        return cls.copied(member)


class MemberWithPrinters(Member):
    """A member and the restricted printers granted to it."""

    printers: list[str]


class NewMemberAnswer(Member):
    """A new member with its API token, shown only this once."""

    token: str


def _role(value: Any) -> Any:
    try:
        return models.Role(value)
    except ValueError:
        raise Invalid("role must be 'member' or 'manager'", field="role") from None


#: A member's name: what they sign in with, so no spaces or slashes.
MemberName = Annotated[str, Field(pattern=NAME_RE.pattern), BeforeValidator(check_member_name)]
RoleField = Annotated[models.Role, BeforeValidator(_role)]


class NewMember(InputModel):
    """``POST /members``."""

    noun: ClassVar[str] = "member field"
    messages: ClassVar[dict[str, str]] = {
        "requires_approval": "requires_approval must be true, false or null",
    }

    name: MemberName
    role: RoleField = models.Role.MEMBER
    requires_approval: Optional[bool] = None


class MemberChanges(InputModel):
    """``PATCH /members/{id}``: only the fields named change."""

    noun: ClassVar[str] = "member field"
    messages: ClassVar[dict[str, str]] = {
        "requires_approval": "requires_approval must be true, false or null (follow the lab)",
        "active": "active must be true or false",
    }

    role: Maybe[RoleField] = None
    requires_approval: Optional[bool] = None
    active: Maybe[bool] = None

    def value(self) -> models.MemberChanges:
        asked = self.requires_approval if "requires_approval" in self.model_fields_set else models.KEEP
        return models.MemberChanges(role=self.role, requires_approval=asked, active=self.active)


class NewPassword(InputModel):
    """``PUT /members/{id}/password``."""

    password: Annotated[
        str, Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD), BeforeValidator(check_password)
    ]


class Token(OutputModel):
    token: str


class Grants(OutputModel):
    printers: list[str]


class Members(OutputModel):
    """One page of the members in id order; ``next_cursor`` fetches the next (null on the last page)."""

    members: list[Member]
    next_cursor: Optional[str] = Field(description="Send as ?cursor= for the next page; null: no more")


#: Longest name a member gives a token ("OctoPrint user ada on printer mini-1").
MAX_TOKEN_LABEL = 200


class SignIn(InputModel):
    """``POST /tokens``: a member's name and password, or a link code, exchanged for a named token."""

    noun: ClassVar[str] = "sign-in field"
    messages: ClassVar[dict[str, str]] = {
        "name": "name must be the member's name (text)",
        "password": "password must be text",
        "link_code": "link_code must be the code from the dashboard's account page (text)",
        "label": f"label must be text of 1 to {MAX_TOKEN_LABEL} characters naming where the token is kept",
    }

    name: Maybe[Annotated[str, Field(min_length=1, max_length=200)]] = None
    password: Maybe[Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD)]] = None
    link_code: Maybe[Annotated[str, Field(min_length=1, max_length=64)]] = None
    label: Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_LABEL)]

    @model_validator(mode="after")
    def one_way(self) -> SignIn:
        by_password = self.name is not None or self.password is not None
        if by_password == (self.link_code is not None):
            raise Invalid("send either name and password, or link_code", field="link_code")
        if by_password and (self.name is None or self.password is None):
            raise Invalid("send both name and password", field="password" if self.name else "name")
        return self


class NamedToken(OutputModel):
    """A new named token: shown only this once."""

    token: str
    id: str = Field(description="What the token is listed and revoked by (not the token)")
    label: str


class TokenInfo(OutputModel):
    """One of a member's tokens as listed: never the token itself."""

    id: str = Field(description="What the token is revoked by (a fingerprint, not the token)")
    label: str
    created_at: Timestamp
    last_used_at: Optional[Timestamp]
    device: bool = Field(
        description="A device's sign-in (POST /tokens); false for the member's own API token, the one "
        "POST /members/{id}/token replaces"
    )


class Tokens(OutputModel):
    tokens: list[TokenInfo]
