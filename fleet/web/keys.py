"""The dashboard's session key: made once, kept in the data dir, readable only by its owner."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_FILE = "web-session.key"  # noqa: S105 (a file name, not a secret)


def session_secret(data_dir: Path) -> bytes:
    """The key that signs session cookies; a new one (first start) signs everybody out, nothing more."""
    path = data_dir / SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text("ascii").strip()
    else:
        key = secrets.token_hex(32)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
    if len(key) < 64:
        raise ValueError(f"{path} is damaged (too short): delete it, and everybody signs in again")
    return key.encode("ascii")
