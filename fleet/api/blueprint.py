"""The /api/v1 blueprint and what every route shares: who is asking, the body, the rate limits.

The routes themselves live one module a resource (:mod:`.jobs`, :mod:`.printers`, :mod:`.members`,
:mod:`.lab`), each declared with :data:`spec`, which also writes the OpenAPI document from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, TypeVar

from flask import Blueprint, current_app, g, request

from ..auth import parse_bearer
from ..errors import Invalid, RateLimited, Unauthorized
from ..http_protocol import API_PREFIX
from ..models import Member, Printer
from ..web.current import service as service  # the routes import it from here
from ..web.limiter import LimitKey, StoredLimiter
from .shapes.base import InputModel, parse_json_object
from .spec import ApiSpec

api = Blueprint("api_v1", __name__, url_prefix=API_PREFIX)
spec = ApiSpec(
    api,
    title="CrowdFab fleet API",
    description="The community print queue: submit G-code, follow the queue, manage printers.",
)

#: The security of endpoints that take no member token (documented as such in the spec).
PUBLIC: list[dict[str, list[str]]] = []
PRINTER_TOKEN: list[dict[str, list[str]]] = [{"printerToken": []}]

Body = TypeVar("Body", bound=InputModel)


@dataclass(frozen=True)
class ApiLimits:
    """Failed attempts the API counts per remote address, each with its own limit (and scope)."""

    #: Wrong enrollment codes (``POST /printers/enroll``).
    enrollment: StoredLimiter
    #: Wrong link codes (``POST /tokens`` with a code from the dashboard's account page).
    link_codes: StoredLimiter
    #: Bearer tokens (members' or printers') that did not authenticate.
    tokens: StoredLimiter


def limits() -> ApiLimits:
    found: ApiLimits = current_app.extensions["crowdfab.api_limits"]
    return found


def client_address() -> str:
    return request.remote_addr or "unknown"


def sign_in_limiter() -> StoredLimiter:
    """The dashboard's sign-in limiter: a name and password tried through the API count there too."""
    limiter: StoredLimiter = current_app.extensions["crowdfab.dashboard"].limiter
    return limiter


def refuse_while_limited(limiter: StoredLimiter, what: str, key: Optional[LimitKey] = None) -> None:
    """:class:`RateLimited` (429, with the wait) while this address has too many recent failures.

    Checked before the attempt is looked at, so a guess made while limited tells nothing (and only
    reads the database: a limited client adds no rows).
    """
    wait = limiter.wait_s(client_address() if key is None else key)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise RateLimited(
            f"too many {what} from this address: wait {seconds} s before trying again",
            details={"retry_after_s": seconds},
        )


def me() -> Member:
    member: Member = g.member
    return member


def this_printer() -> Printer:
    printer: Printer = g.printer
    return printer


def security_of(endpoint: Optional[str]) -> Optional[list[dict[str, list[str]]]]:
    """What an endpoint's operation declares it takes: None for a member's token (the default)."""
    for op in spec.operations:
        if f"{api.name}.{op.view}" == endpoint:
            return op.security
    return None


@api.before_request
def authenticate() -> None:
    security = security_of(request.endpoint)
    if security == PUBLIC:
        return
    token = parse_bearer(request.headers.get("Authorization"))
    limiter = limits().tokens
    # A request without a token is no guess: it is only told how to sign in, and not counted.
    if token is not None:
        refuse_while_limited(limiter, "requests with an invalid API token")
    try:
        if security == PRINTER_TOKEN:
            g.printer = service().enrollment.authenticate_printer(token)
        else:
            g.member = service().identity.authenticate(token)
    except Unauthorized:
        # A success never clears the count: one valid token must not buy an address more guesses.
        if token is not None:
            limiter.failed(client_address())
        raise


def body(model: type[Body]) -> Body:
    """The request's JSON body checked into ``model`` (an absent body is an empty object)."""
    data = request.get_data(cache=True)
    if not data:
        return model.parse({})
    if not request.is_json:
        raise Invalid("the request body must be JSON (Content-Type: application/json)")
    return model.parse(parse_json_object(data))


def query(model: type[Body]) -> Body:
    """The request's query string checked into ``model``; an empty parameter counts as absent."""
    return model.parse({key: value for key, value in request.args.items() if value != ""})
