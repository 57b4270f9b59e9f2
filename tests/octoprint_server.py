"""A real OctoPrint for tests: temp base directory, virtual printer, admin and member API keys."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

import requests
import yaml

from octoprint_crowdfab import WIZARD_VERSION
from tests.brokers import free_port
from tests.processes import answers

VENV_BIN = Path(sys.executable).parent
ADMIN_KEY = "crowdfab-test-admin-key"
MEMBER_KEY = "crowdfab-test-member-key"

#: The virtual printer answers at once and does not pretend to reset, so prints take seconds.
FAST_VIRTUAL_PRINTER = {
    "enabled": True,
    "simulateReset": False,
    "throttle": 0.001,
    "sendWait": False,
    "okAfterResend": True,
}


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


class OctoPrintServer:
    """Start with :meth:`start`, stop with :meth:`stop`; ``url``, ``admin``/``member`` sessions for calls."""

    def __init__(
        self,
        plugin_settings: Optional[dict[str, Any]] = None,
        *,
        extra_plugins: Optional[dict[str, str]] = None,
        virtual_printer: Optional[dict[str, Any]] = None,
        start_timeout: float = 40.0,
        wizard_seen: bool = True,
        venv_bin: Path = VENV_BIN,
        other_plugins: Optional[dict[str, dict[str, Any]]] = None,
    ) -> None:
        self.plugin_settings = plugin_settings or {}
        #: Settings of OctoPrint's other plugins (``{"classicwebcam": {"snapshot": url}}``).
        self.other_plugins = other_plugins or {}
        self.extra_plugins = extra_plugins or {}
        self.virtual_printer = virtual_printer or FAST_VIRTUAL_PRINTER
        self.start_timeout = start_timeout
        #: False: the plugin's first-run wizard greets an admin who signs in (when nothing is set up).
        self.wizard_seen = wizard_seen
        #: Where ``octoprint`` is: this environment's, or a clean one an install test made.
        self.venv_bin = venv_bin
        self.basedir = Path(tempfile.mkdtemp(prefix="crowdfab-octoprint-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.admin = self._session(ADMIN_KEY)
        self.member = self._session(MEMBER_KEY)
        self.anonymous = requests.Session()

    def _session(self, key: str) -> requests.Session:
        session = requests.Session()
        session.headers["X-Api-Key"] = key
        return session

    def start(self) -> OctoPrintServer:
        self._write_config()
        self._add_user("admin", ADMIN_KEY, admin=True)
        # A member who may read settings (to show what is restricted) but is no admin.
        self._add_user("member", MEMBER_KEY, admin=False, permissions=("SETTINGS_READ",))
        return self.launch()

    def launch(self) -> OctoPrintServer:
        """Run OctoPrint on the base directory as it is (after :meth:`start` wrote it, or to restart)."""
        assert self.process is None or self.process.poll() is not None, "OctoPrint is already running"
        log = (self.basedir / "serve.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(self.venv_bin / "octoprint"),
                "serve",
                "--iknowwhatimdoing",
                "--basedir",
                str(self.basedir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            wait_for(self._online, self.start_timeout, "OctoPrint to answer /online.txt")
            wait_for(self._operational, self.start_timeout, "the virtual printer to be operational", 0.2)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0, *, keep_basedir: bool = False) -> None:
        """Stop OctoPrint; its base directory goes too unless ``keep_basedir`` (to :meth:`launch` again)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self.process = None
        if not keep_basedir and not os.environ.get("CROWDFAB_KEEP_OCTOPRINT"):
            shutil.rmtree(self.basedir, ignore_errors=True)

    def log_text(self) -> str:
        path = self.basedir / "logs" / "octoprint.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- setup -----------------------------------------------------------------------------------

    def _write_config(self) -> None:
        config = {
            "server": {
                "firstRun": False,
                "onlineCheck": {"enabled": False},
                "pluginBlacklist": {"enabled": False},
                "seenWizards": {
                    "corewizard": 4,
                    **({"crowdfab": WIZARD_VERSION} if self.wizard_seen else {}),
                },
            },
            "plugins": {
                "virtual_printer": self.virtual_printer,
                "tracking": {"enabled": False},
                "announcements": {"enabled": False},
                "softwareupdate": {"checks": {"octoprint": {"disabled": True}}},
                "crowdfab": self.plugin_settings,
                **self.other_plugins,
            },
            "serial": {"autoconnect": True, "port": "VIRTUAL", "baudrate": 115200},
        }
        (self.basedir / "config.yaml").write_text(yaml.safe_dump(config))
        if self.extra_plugins:
            plugins = self.basedir / "plugins"
            plugins.mkdir(exist_ok=True)
            for name, source in self.extra_plugins.items():
                (plugins / f"{name}.py").write_text(source)

    def _add_user(self, name: str, key: str, *, admin: bool, permissions: tuple[str, ...] = ()) -> None:
        command = [str(self.venv_bin / "octoprint"), "--basedir", str(self.basedir), "user", "add", name]
        command += ["--password", f"{name}-password"] + (["--admin"] if admin else [])
        for permission in permissions:
            command += ["--permission", permission]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        users_file = self.basedir / "users.yaml"
        users = yaml.safe_load(users_file.read_text())
        users[name]["apikey"] = key
        users_file.write_text(yaml.safe_dump(users))

    def _online(self) -> bool:
        return answers(f"{self.url}/online.txt", self.process, "OctoPrint", lambda: self.log_text()[-3000:])

    def _operational(self) -> bool:
        state = self.admin.get(f"{self.url}/api/connection", timeout=2).json()["current"]["state"]
        return state == "Operational"
