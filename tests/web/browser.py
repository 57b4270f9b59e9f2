"""A served fleet and Debian's chromium through Playwright, for the dashboard's browser tests and bench."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

CHROMIUM = os.environ.get("CROWDFAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: axe-core is fetched from npm once, into a cache outside the repository.
AXE_CACHE = Path(os.environ.get("CROWDFAB_AXE_DIR", Path.home() / ".cache" / "crowdfab-test"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def browser_unavailable() -> Optional[str]:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright; no browser download needed)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no chromium at {CHROMIUM}: run 'make system-deps' (apt-get install chromium)"
    return None


def axe_script() -> Optional[Path]:
    """axe.min.js, installed with npm on first use; None when npm is not there."""
    path = AXE_CACHE / "node_modules" / "axe-core" / "axe.min.js"
    if path.is_file():
        return path
    npm = shutil.which("npm")
    if npm is None:
        return None
    AXE_CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(AXE_CACHE), "axe-core"],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return path if path.is_file() else None


@contextmanager
def served(fleet: Any) -> Iterator[str]:
    """The fleet's app served by waitress (as ``serve`` does, without the printer link); yields its URL."""
    from fleet.server import make_server

    server = make_server(fleet)
    thread = threading.Thread(target=server.run, name="test-waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(10)


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
