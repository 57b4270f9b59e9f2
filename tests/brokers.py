"""Private Mosquitto brokers and outside clients for tests.

Any test package can use them; the mqtt tests' ``mosquitto`` fixture is one example::

    from tests.brokers import TestBroker

    @pytest.fixture
    def mosquitto(tmp_path):
        broker = TestBroker(tmp_path / "broker")
        broker.start()
        yield broker
        broker.close()

    def test_something(mosquitto):
        sub = mosquitto.sub("crowdfab/v1/printers/+/status")   # a real mosquitto_sub, subscribed
        ...                                                    # code under test connects to mosquitto.url
        topic, payload = sub.wait_for(lambda t, p: t.endswith("/p1/status"), timeout=5)

``stop()`` then ``start()`` restarts the broker on the same port with its retained messages
(persistence is on), for outage tests. Give ``users`` (name → clear password) and ``acl`` (ACL file
text) to require logins, or ``dynsec`` (a dynamic security file's JSON, e.g. from
``fleet.dynsec.initial_config``) to load Mosquitto's dynamic security plugin with it; without them
anonymous clients may do anything. ``sub`` and ``pub`` run
the real ``mosquitto_sub``/``mosquitto_pub`` binaries, so they are clients from outside our code.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Callable, Optional, Union

from fleet.broker import _die_with_parent
from fleet.dynsec import find_plugin

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
#: Mosquitto 2's dynamic security plugin (in Debian's mosquitto package).
DYNSEC_PLUGIN = find_plugin() or "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
HOST = "127.0.0.1"

Predicate = Callable[[str, bytes], bool]


def free_port() -> int:
    """A TCP port nothing listens on right now (never 1883: the system broker has it)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``condition`` until it holds; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def _login(username: Optional[str], password: Optional[str]) -> list[str]:
    args = []
    if username is not None:
        args += ["-u", username]
    if password is not None:
        args += ["-P", password]
    return args


class Subscription:
    """A running ``mosquitto_sub``; collects (topic, payload) pairs in the order they arrive."""

    def __init__(self, args: list[str], description: str) -> None:
        self.description = description
        self._cond = threading.Condition()
        self._messages: list[tuple[str, bytes]] = []
        self._granted: Optional[list[int]] = None
        self._output: list[str] = []
        # stdbuf: mosquitto_sub's debug lines are not flushed on their own when stdout is a pipe.
        self._proc = subprocess.Popen(
            ["stdbuf", "-oL", MOSQUITTO_SUB, *args, "-d", "-F", "MSG %t %x"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            line = line.rstrip("\n")
            with self._cond:
                self._output.append(line)
                if line.startswith("MSG "):
                    _, topic, hexed = line.split(" ", 2)
                    self._messages.append((topic, bytes.fromhex(hexed)))
                elif line.startswith("Subscribed (mid:"):
                    self._granted = [int(q) for q in line.split(":", 2)[2].replace(" ", "").split(",")]
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def messages(self) -> list[tuple[str, bytes]]:
        with self._cond:
            return list(self._messages)

    @property
    def alive(self) -> bool:
        """False once mosquitto_sub has exited (it gives up when the broker refuses it)."""
        return self._proc.poll() is None

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self._output)

    def wait_subscribed(self, timeout: float = 5.0) -> list[int]:
        """Wait for the SUBACK; returns the granted QoS per topic (128 = refused)."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self._granted is not None or self._proc.poll() is not None, timeout
            )
            if self._granted is None:
                state = "exited" if ok else "timed out"
                raise AssertionError(f"{self.description} {state} before subscribing:\n{self.output}")
            return list(self._granted)

    def wait_for(self, predicate: Predicate = lambda t, p: True, timeout: float = 5.0) -> tuple[str, bytes]:
        """The first message (from the start) matching ``predicate``; fails the test after ``timeout``."""

        def found() -> Optional[tuple[str, bytes]]:
            return next((m for m in self._messages if predicate(*m)), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None or self._proc.poll() is not None, timeout)
            hit = found()
            if hit is None:
                raise AssertionError(
                    f"{self.description}: no matching message within {timeout} s; got {self._messages}"
                )
            return hit

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._reader.join(5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class OutsideClients:
    """``mosquitto_sub``/``mosquitto_pub`` against any broker (a :class:`TestBroker`, a managed one)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._subs: list[Subscription] = []

    def close(self) -> None:
        """End every subscription this object started."""
        for sub in self._subs:
            sub.close()
        self._subs.clear()

    def sub(
        self,
        topics: Union[str, Sequence[str]],
        username: Optional[str] = None,
        password: Optional[str] = None,
        *,
        wait: bool = True,
    ) -> Subscription:
        """Run ``mosquitto_sub`` on ``topics`` (QoS 1); by default wait until the broker confirmed it."""
        names = [topics] if isinstance(topics, str) else list(topics)
        args = ["-h", self.host, "-p", str(self.port), "-q", "1", *_login(username, password)]
        for name in names:
            args += ["-t", name]
        sub = Subscription(args, f"mosquitto_sub as {username or 'anonymous'} on {names}")
        self._subs.append(sub)
        if wait:
            sub.wait_subscribed()
        return sub

    def pub(
        self,
        topic: str,
        payload: Union[bytes, str],
        username: Optional[str] = None,
        password: Optional[str] = None,
        *,
        retain: bool = False,
        qos: int = 1,
    ) -> subprocess.CompletedProcess[bytes]:
        """Publish once with ``mosquitto_pub``; the result's returncode says whether it connected."""
        data = payload.encode() if isinstance(payload, str) else payload
        # -s reads the payload from stdin (any bytes); it refuses an empty one, which -n sends.
        body = ["-s"] if data else ["-n"]
        args = [MOSQUITTO_PUB, "-h", self.host, "-p", str(self.port), "-q", str(qos), "-t", topic, *body]
        if retain:
            args.append("-r")
        return subprocess.run(
            [*args, *_login(username, password)], input=data, capture_output=True, timeout=10, check=False
        )


class TestBroker(OutsideClients):
    """A private Mosquitto on a free port, its files in ``directory``."""

    __test__ = False  # a helper, not a test class, wherever it is imported

    def __init__(
        self,
        directory: Path,
        *,
        port: Optional[int] = None,
        users: Optional[Mapping[str, str]] = None,
        acl: Optional[str] = None,
        dynsec: Optional[str] = None,
        mosquitto: str = MOSQUITTO,
    ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        super().__init__(HOST, port if port is not None else free_port())
        self._mosquitto = mosquitto
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._write_conf(users, acl, dynsec)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.dir / "mosquitto.log"

    @property
    def pid(self) -> Optional[int]:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def url_for(self, username: str, password: str) -> str:
        return f"mqtt://{username}:{password}@{self.host}:{self.port}"

    def _write_conf(
        self, users: Optional[Mapping[str, str]], acl: Optional[str], dynsec: Optional[str]
    ) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            "persistence true",
            f"persistence_location {self.dir}/",
            f"log_dest file {self.log_path}",
            "log_type all",
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
        ]
        if users:
            passwd = self.dir / "passwd"
            passwd.write_text("")
            for name, password in users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwd), name, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        elif dynsec is not None:
            (self.dir / "dynsec.json").write_text(dynsec)
            lines += [
                "allow_anonymous false",
                f"plugin {DYNSEC_PLUGIN}",
                f"plugin_opt_config_file {self.dir / 'dynsec.json'}",
            ]
        else:
            lines += ["allow_anonymous true"]
        if acl is not None:
            (self.dir / "acl").write_text(acl)
            lines += [f"acl_file {self.dir / 'acl'}"]
        (self.dir / "mosquitto.conf").write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> None:
        """Start (or start again, on the same port) and wait until the port accepts connections."""
        assert self.pid is None, "the test broker is already running"
        with open(self.log_path, "ab") as out:
            # It dies with the test run even if a test fails before closing it: no broker outlives pytest.
            self._proc = subprocess.Popen(
                [self._mosquitto, "-c", str(self.dir / "mosquitto.conf")],
                stdout=out,
                stderr=out,
                preexec_fn=_die_with_parent(),
            )
        proc = self._proc

        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"mosquitto exited with {proc.returncode}:\n{self.log_path.read_text()}")
            return port_open(self.port)

        wait_until(up, timeout, f"mosquitto on port {self.port}")

    def stop(self) -> None:
        """Stop cleanly (retained messages are saved); ``start()`` brings it back on the same port."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)
        self._proc = None

    def close(self) -> None:
        super().close()
        self.stop()
