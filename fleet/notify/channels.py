"""A member's channels through Apprise: a URL is checked when saved, shown only redacted, and sent to.

A channel URL holds secrets (a mail password, a bot token, a webhook's key), so the fleet keeps it
like a password it must be able to use: stored, never sent back, never logged. What people and logs
see is :func:`redact`: the scheme and the host as Apprise's own privacy form shows them, and nothing
else. Text that Apprise logs while sending is passed through :func:`scrub` before the fleet keeps it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

from ..errors import Invalid

log = logging.getLogger(__name__)

#: Longest channel URL the fleet keeps.
MAX_URL_CHARS = 2000
#: How much of a failure's text is kept for the member to read.
MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class CheckedChannel:
    url: str
    #: What may be shown: ``mailto://smtp.lab.org/…``.
    shown: str
    #: Apprise's name for the service ("E-Mail", "ntfy", "Discord").
    service: str


def check_channel_url(url: object, field: str = "url") -> CheckedChannel:
    """An Apprise URL the fleet can send to, or :class:`Invalid` naming the problem (never the URL)."""
    import apprise

    if not isinstance(url, str) or not url.strip():
        raise Invalid(
            f"{field} must be an Apprise URL such as mailto://… or ntfys://…",
            field=field,
            key="channel_url_bad",
        )
    url = url.strip()
    if len(url) > MAX_URL_CHARS or not url.isprintable():
        raise Invalid(
            f"{field} must be at most {MAX_URL_CHARS} printable characters",
            field=field,
            key="channel_url_bad",
        )
    scheme = url.partition("://")[0].lower()
    if not scheme or scheme == url.lower() or scheme in ("http", "https", "file"):
        raise Invalid(
            f"{field} must name an Apprise service (mailto://, ntfys://, json://, discord:// …), "
            f"not {scheme or 'nothing'}://",
            field=field,
            key="channel_url_bad",
        )
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        raise Invalid(
            f"{field}: Apprise cannot use this {scheme}:// URL (unknown service, or a part is missing or "
            "wrong); see the Apprise wiki for the service's URL form",
            field=field,
            key="channel_url_bad",
        )
    shown = redact(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
    return CheckedChannel(url, shown, str(plugin.service_name))


def kind_of(url: str) -> str:
    """A channel's kind, for counting: its URL's scheme (``mailto``, ``ntfy``, ``tgram``), nothing of
    the rest (which may hold a secret); ``other`` when the URL has no scheme to speak of."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    return scheme if scheme.isascii() and scheme[:1].isalpha() and len(scheme) <= 32 else "other"


def redact(url: str) -> str:
    """A URL reduced to its scheme and host, any user masked: what may be shown or logged."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return url.partition("://")[0] + "://…"
    user = "****@" if parts.username or parts.password else ""
    return f"{parts.scheme}://{user}{host}{port}/…"


def secret_parts(url: str) -> list[str]:
    """The pieces of a channel URL that may be secret (user, password, path segments, query values)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = [parts.username or "", parts.password or ""]
    found += [unquote(p) for p in parts.path.split("/")]
    found += [unquote(v) for _, _, v in (q.partition("=") for q in parts.query.split("&"))]
    # The host of services whose "host" is a key (discord://webhook_id/token) is one too.
    if parts.hostname and "." not in parts.hostname and parts.hostname != "localhost":
        found.append(parts.hostname)
    return sorted({p for p in found if len(p) >= 4}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` with every secret part of ``url`` (and the URL itself) replaced by ``****``."""
    text = text.replace(url, redact(url))
    for part in secret_parts(url):
        text = text.replace(part, "****")
    return re.sub(r"\s+", " ", text).strip()[:MAX_ERROR_CHARS]


@dataclass(frozen=True)
class Attachment:
    data: bytes
    name: str
    media_type: str


def send(url: str, title: str, body: str, attachment: Optional[Attachment] = None) -> Optional[str]:
    """Send one notification through Apprise; None when it went, else why not (secrets scrubbed)."""
    import apprise

    hide = _Scrubbing(url)
    apprise_log = logging.getLogger("apprise")
    apprise_log.addFilter(hide)
    try:
        notifier = apprise.Apprise()
        if not notifier.add(url):
            return "Apprise no longer accepts this channel's URL"
        return _notify(apprise, notifier, url, title, body, _attach(apprise, attachment))
    finally:
        apprise_log.removeFilter(hide)


def _attach(apprise: Any, attachment: Optional[Attachment]) -> Any:
    from apprise.attachment.memory import AttachMemory

    if attachment is None:
        return None
    attach = apprise.AppriseAttachment()
    attach.add(AttachMemory(content=attachment.data, name=attachment.name, mimetype=attachment.media_type))  # type: ignore[no-untyped-call]
    return attach


class _Scrubbing(logging.Filter):
    """Takes the channel's secrets out of whatever Apprise logs while it sends to that channel."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage(), self.url), None
        return True


def _notify(apprise: Any, notifier: Any, url: str, title: str, body: str, attach: Any) -> Optional[str]:
    capture = apprise.LogCapture(level=logging.WARNING, fmt="%(message)s")
    with capture as captured:
        try:
            sent = notifier.notify(body=body, title=title, attach=attach)
        except Exception as exc:  # a plugin's own bug must not stop the outbox
            return scrub(f"{type(exc).__name__}: {exc}", url)
        if sent:
            return None
        return scrub(captured.getvalue() or "the service refused or did not answer", url)
