"""Waiting for a server the tests started as a process (the fleet, OctoPrint) to answer over HTTP."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any, Optional

import requests


def answers(url: str, process: Optional[subprocess.Popen[Any]], what: str, output: Callable[[], str]) -> bool:
    """One look for ``wait_until``: whether ``url`` answers 200 yet. A process that has exited fails the
    wait at once with ``output()``, rather than letting it run out of time with nothing to show."""
    if process is not None and process.poll() is not None:
        raise AssertionError(f"{what} exited with {process.returncode}:\n{output()}")
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False
