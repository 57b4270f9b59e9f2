"""The fleet's configuration: plain values, with defaults for an embedded single-machine setup."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

DEFAULT_PORT = 8080
DEFAULT_MAX_UPLOAD_BYTES = 200 * 1024 * 1024


def default_data_dir() -> Path:
    """``$CROWDFAB_DATA_DIR``, else ``~/.crowdfab``."""
    env = os.environ.get("CROWDFAB_DATA_DIR")
    return Path(env) if env else Path.home() / ".crowdfab"


@dataclass(frozen=True)
class FleetConfig:
    data_dir: Path
    #: None: SQLite under ``data_dir``.
    database_url: Optional[str] = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    threads: int = 8
    #: Reverse proxies in front of the fleet whose X-Forwarded-For/-Proto it believes (0: none, so a
    #: client cannot pose as another address; set it to the number of proxies that add the headers).
    trusted_proxies: int = 0

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "files"
