"""Where the photo of the plate comes from: OctoPrint's webcam settings, read as plain values.

OctoPrint 1.9 and later keep the webcam in the bundled "classic webcam" plugin's settings
(``plugins.classicwebcam``): the snapshot URL, whether to check its TLS certificate, a timeout, and since
1.11 how to log in (``snapshotAuth``: none, basic, digest or bearer, with ``snapshotUsername``,
``snapshotPassword`` or ``snapshotBearerToken``). Older configurations have the URL under ``webcam``.
A URL of the form ``http://user:password@host/...`` logs in with basic authentication on any version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Optional

from fleet.node import WebcamLogin

log = logging.getLogger(__name__)

CLASSIC = ["plugins", "classicwebcam"]


@dataclass(frozen=True)
class WebcamSettings:
    """The snapshot URL and how to ask it; ``url`` empty: no webcam, no photo. Never sent to a browser."""

    url: str = ""
    login: Optional[WebcamLogin] = None
    verify_tls: bool = True
    timeout_s: float = 5.0

    def __repr__(self) -> str:  # the URL may carry a password
        return (
            f"WebcamSettings(login={self.login!r}, verify_tls={self.verify_tls}, timeout_s={self.timeout_s})"
        )


#: No snapshot URL: no photo of the plate.
NO_WEBCAM = WebcamSettings()


def webcam_settings(global_get: Callable[[list[str]], Any]) -> WebcamSettings:
    """Read OctoPrint's webcam settings through ``global_get`` (its ``_settings.global_get``)."""
    url = ""
    for path in ([*CLASSIC, "snapshot"], ["webcam", "snapshot"]):
        value = global_get(path)
        if isinstance(value, str) and value.strip():
            url = value.strip()
            break
    if not url:
        return NO_WEBCAM
    verify = global_get([*CLASSIC, "snapshotSslValidation"])
    timeout = global_get([*CLASSIC, "snapshotTimeout"])
    try:
        timeout_s = min(60.0, max(1.0, float(timeout))) if timeout is not None else 5.0
    except (TypeError, ValueError):
        timeout_s = 5.0
    return WebcamSettings(url, _login(global_get), verify is not False, timeout_s)


def _login(global_get: Callable[[list[str]], Any]) -> Optional[WebcamLogin]:
    kind = global_get([*CLASSIC, "snapshotAuth"])
    if not isinstance(kind, str) or kind in ("", "none"):
        return None

    def text(key: str) -> str:
        value = global_get([*CLASSIC, key])
        return value if isinstance(value, str) else ""

    try:
        return WebcamLogin(
            kind,
            username=text("snapshotUsername"),
            password=text("snapshotPassword"),
            token=text("snapshotBearerToken"),
        )
    except ValueError as exc:
        log.error("asking the webcam without a login: %s", exc)
        return None
