"""Outgoing webhooks: the URL rules that keep them from reaching where they should not, and the POST.

Only managers register webhooks. A URL must be ``http`` or ``https`` with a host, no user or
password in it, and no fragment; the request never follows a redirect (a 3xx counts as a failure,
so a webhook cannot be bounced to another address), has short timeouts, and reads at most a little
of the answer. Addresses are not filtered otherwise: a lab's integrations often live on its own
network (a chat server, a home automation box), and the managers who register them are trusted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit

from ..errors import Invalid
from .signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, sign

MAX_URL_CHARS = 2000
#: Seconds to connect, then to read the answer.
TIMEOUT = (5.0, 10.0)
#: Bytes of the receiver's answer kept in the delivery log.
MAX_ANSWER_BYTES = 500


def check_webhook_url(url: object, field: str = "url") -> str:
    """A webhook URL the fleet may POST to, or :class:`Invalid` naming the problem."""
    if not isinstance(url, str) or not url.strip():
        raise Invalid(f"{field} must be an http:// or https:// URL", field=field, key="webhook_url_bad")
    url = url.strip()
    if len(url) > MAX_URL_CHARS or not url.isprintable() or " " in url:
        raise Invalid(
            f"{field} must be a URL of at most {MAX_URL_CHARS} characters, without spaces", field=field
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Invalid(f"{field} is not a valid URL: {exc}", field=field, key="webhook_url_bad") from None
    if parts.scheme not in ("http", "https"):
        raise Invalid(f"{field} must start with http:// or https://", field=field, key="webhook_url_bad")
    if not parts.hostname:
        raise Invalid(f"{field} must name a host", field=field, key="webhook_url_bad")
    if parts.username is not None or parts.password is not None:
        raise Invalid(
            f"{field} must not hold a user or password: the signature proves the sender", field=field
        )
    if parts.fragment:
        raise Invalid(f"{field} must not have a #fragment", field=field, key="webhook_url_bad")
    if port == 0:
        raise Invalid(f"{field} must not name port 0", field=field, key="webhook_url_bad")
    return url


def body_of(delivery_key: str, event_key: str, kind: str, at: float, data: Mapping[str, Any]) -> bytes:
    """The JSON a webhook receives (compact, keys sorted, so the signed bytes are what is sent)."""
    document = {"id": delivery_key, "event": event_key, "kind": kind, "created_at": at, "data": dict(data)}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Answer:
    #: None: no HTTP answer (refused, timed out).
    status: Optional[int]
    #: None when delivered (2xx), else why not.
    error: Optional[str]
    excerpt: str = ""


def post(
    url: str, secret: str, delivery_key: str, event_key: str, body: bytes, *, now: Optional[float] = None
) -> Answer:
    """POST one signed delivery; a 2xx answer is a success, anything else (3xx included) a failure."""
    import requests

    timestamp = int(time.time() if now is None else now)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "CrowdFab-Webhook/1",
        SIGNATURE_HEADER: sign(secret, body, timestamp),
        DELIVERY_HEADER: delivery_key,
        EVENT_HEADER: event_key,
    }
    try:
        with requests.post(
            url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False, stream=True
        ) as r:
            excerpt = r.raw.read(MAX_ANSWER_BYTES, decode_content=True).decode("utf-8", "replace")
            if 200 <= r.status_code < 300:
                return Answer(r.status_code, None, excerpt)
            return Answer(r.status_code, f"the receiver answered HTTP {r.status_code}", excerpt)
    except requests.RequestException as exc:
        return Answer(None, f"{type(exc).__name__}: could not reach the receiver")
