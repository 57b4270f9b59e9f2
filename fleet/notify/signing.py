"""Signed webhook deliveries: HMAC-SHA256 over ``"<timestamp>.<body>"`` with the webhook's secret.

Each delivery carries the header ``CrowdFab-Signature: t=<unix seconds>,v1=<hex digest>``. A
receiver recomputes the digest over the timestamp, a dot and the raw body bytes, compares it in
constant time, and refuses a timestamp further than its tolerance from its own clock, so a captured
delivery cannot be replayed later. Pure functions: no clock of their own, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "CrowdFab-Signature"
#: The delivery's own id (unique per event and webhook; a replay gets a new one): receivers may
#: drop one they already handled.
DELIVERY_HEADER = "CrowdFab-Delivery"
EVENT_HEADER = "CrowdFab-Event"
#: How far a delivery's timestamp may be from the receiver's clock, by default.
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """A delivery that must not be believed; the message says why."""


def new_secret() -> str:
    """A fresh shared secret for a webhook (shown once to the manager who registers it)."""
    return "whsec_" + secrets.token_urlsafe(32)


def digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={int(timestamp)},v1={digest(secret, timestamp, body)}"


def verify(
    secret: str, body: bytes, header: str, *, now: float, tolerance_s: float = DEFAULT_TOLERANCE_S
) -> int:
    """Check a delivery's signature header; returns its timestamp, or raises :class:`SignatureError`."""
    timestamp = None
    signatures = []
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("the signature header must hold t=<timestamp> and v1=<signature>")
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(f"the timestamp is {abs(now - timestamp):.0f} s from now, past the tolerance")
    expected = digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, given) for given in signatures):
        raise SignatureError("the signature does not match the body")
    return timestamp
