"""Members signed in to the fleet from this OctoPrint: one fleet token per OctoPrint user, kept server-side.

The tokens live in a file of the plugin's own data folder (readable by OctoPrint's user only), not in
OctoPrint's per-user settings: OctoPrint sends a user's settings to the browser (``/api/login`` and
the user's settings endpoint answer with them), and a token must never reach the browser.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Optional

from fleet.client import FleetClient, FleetRequestError


class MemberTokens:
    """OctoPrint user name → that user's fleet token, in one JSON file written atomically (mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}  # an unreadable file signs everyone out, it does not break the plugin
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}

    def _write(self, tokens: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        spare = self.path.with_suffix(".tmp")
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(tokens, out)
        os.replace(spare, self.path)

    def get(self, user: str) -> Optional[str]:
        with self._lock:
            return self._read().get(user)

    def put(self, user: str, token: str) -> None:
        with self._lock:
            tokens = self._read()
            tokens[user] = token
            self._write(tokens)

    def forget(self, user: str) -> None:
        with self._lock:
            tokens = self._read()
            if tokens.pop(user, None) is not None:
                self._write(tokens)


def token_label(user: str, printer: str) -> str:
    """How the member's dashboard names the token: which OctoPrint user, on which printer."""
    return f"OctoPrint user {user} on printer {printer}"


def sign_in(
    fleet_url: str,
    label: str,
    *,
    name: Optional[str] = None,
    password: Optional[str] = None,
    link_code: Optional[str] = None,
) -> str:
    """A new fleet token for the member (name and password, or a dashboard link code); never retried."""
    if link_code is None and (not name or not password):
        raise FleetRequestError(
            "send your fleet name and password, or a link code from your account page", 400
        )
    with FleetClient(fleet_url, timeout=(5.0, 30.0), retries=0) as client:
        return client.sign_in(label, name=name, password=password, link_code=link_code)
