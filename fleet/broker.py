"""The managed broker: a Mosquitto the fleet writes the configuration for, starts, reloads and supervises.

Access is password-only (no anonymous clients) and ACL-limited: the fleet's own user reads what
nodes publish and writes commands; every other user is a printer whose username is its printer id,
and may only publish its own node channels and read its own commands.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .errors import Invalid, Unavailable
from .protocol import NODE_PUBLISHES, PRINTER_ID_RE, PRINTERS, RETAINED, Channel, wildcard

log = logging.getLogger(__name__)

#: Where Debian and a source install put the broker when it is not on PATH.
MOSQUITTO_PLACES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
INSTALL_HINT = (
    "install it (Debian/Ubuntu: sudo apt-get install mosquitto) or give an external broker with "
    "--mqtt-url mqtt://user:pass@host:1883"
)
#: Mosquitto's default and its salt length for PBKDF2-SHA512 password hashes (``$7$``).
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
_HASH_RE = re.compile(r"^\$7\$[0-9]+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$")
#: A fleet username goes into the password and ACL files as it is: no separators, no wildcards.
_FLEET_USER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True)
class BrokerUser:
    """A broker login: the username and its password already hashed (see :func:`hash_password`)."""

    username: str
    password_hash: str


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: Optional[bytes] = None) -> str:
    """Hash a password the way ``mosquitto_passwd`` does: ``$7$<iterations>$<b64 salt>$<b64 hash>``."""
    if iterations < 1:
        raise Invalid("iterations must be at least 1", field="iterations")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode('ascii')}${b64(digest).decode('ascii')}"


def acl_text(fleet_username: str) -> str:
    """The Mosquitto ACL file: what the fleet user and each printer user may read and write."""
    _check_fleet_username(fleet_username)
    node_channels = sorted(NODE_PUBLISHES, key=lambda c: c.value)
    lines = [
        "# CrowdFab broker ACL, written by the fleet: edits are overwritten.",
        "# Anything not allowed here is denied.",
        "",
        "# The fleet reads what every node publishes and sends commands. It may also write the",
        "# retained channels, to clear what a removed printer left behind.",
        f"user {fleet_username}",
    ]
    lines += [f"topic read {wildcard(channel)}" for channel in node_channels]
    lines += [f"topic write {wildcard(channel)}" for channel in sorted(RETAINED, key=lambda c: c.value)]
    lines += [f"topic write {wildcard(Channel.CMD)}"]
    lines += [
        "",
        "# Every other user is a printer, its username its printer id: it publishes only its own",
        "# channels and reads only its own commands.",
    ]
    lines += [f"pattern write {PRINTERS}/%u/{channel.value}" for channel in node_channels]
    lines += [f"pattern read {PRINTERS}/%u/{Channel.CMD.value}", ""]
    return "\n".join(lines)


#: How long mosquitto must stay up once its port is open before it counts as started.
STARTUP_SETTLE_S = 0.3


def find_mosquitto(explicit: Optional[str] = None) -> str:
    """The path of the mosquitto executable: ``explicit`` if given, else PATH, else the usual places."""
    if explicit is not None:
        found = shutil.which(explicit)
        if found is None:
            raise Unavailable(f"mosquitto not found at {explicit!r}: {INSTALL_HINT}", field="mosquitto")
        return found
    found = shutil.which("mosquitto")
    if found is not None:
        return found
    for place in MOSQUITTO_PLACES:
        if os.path.isfile(place) and os.access(place, os.X_OK):
            return place
    raise Unavailable(f"the MQTT broker mosquitto is not installed: {INSTALL_HINT}", field="mosquitto")


class ManagedBroker:
    """A private Mosquitto for the fleet, restarted with backoff if it dies."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int,
        host: str = "127.0.0.1",
        fleet_user: BrokerUser,
        users: Callable[[], Iterable[BrokerUser]],
        mosquitto: Optional[str] = None,
        restart_backoff: float = 1.0,
        max_restart_backoff: float = 30.0,
        start_timeout: float = 10.0,
        tls_cert: Optional[Path] = None,
        tls_key: Optional[Path] = None,
    ) -> None:
        _check_fleet_username(fleet_user.username)
        if (tls_cert is None) != (tls_key is None):
            raise Invalid("give both tls_cert and tls_key, or neither", field="tls_cert")
        self.dir = Path(data_dir) / "mosquitto"
        self.port = port
        self.host = host
        self.fleet_user = fleet_user
        self._users = users
        self._mosquitto = mosquitto
        self._restart_backoff = restart_backoff
        self._max_restart_backoff = max_restart_backoff
        self._start_timeout = start_timeout
        self._tls = (tls_cert, tls_key) if tls_cert is not None and tls_key is not None else None
        self._lock = threading.Lock()
        # Enrollments reload from several request threads: one writer of passwd and acl at a time,
        # each reading the users afresh, so the last write holds every committed change.
        self._files_lock = threading.Lock()
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._stopping = threading.Event()
        self._supervisor: Optional[threading.Thread] = None

    @property
    def conf_path(self) -> Path:
        return self.dir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.dir / "mosquitto.log"

    @property
    def pid(self) -> Optional[int]:
        """The running broker's process id (None when it is not running)."""
        with self._lock:
            proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        """Write the configuration, start mosquitto and wait until it accepts connections."""
        if self._supervisor is not None:
            return
        executable = find_mosquitto(self._mosquitto)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        _write_private(self.conf_path, self._conf_text())
        with self._files_lock:
            self._write_access_files()
        self._stopping.clear()
        self._launch(executable)
        self._supervisor = threading.Thread(
            target=self._supervise, args=(executable,), name="mosquitto-supervisor", daemon=True
        )
        self._supervisor.start()

    def reload(self) -> None:
        """Rewrite the password and ACL files and have mosquitto re-read them (after enrolling, revoking).

        Mosquitto then lets new users in, refuses removed ones and closes the connections a removed
        user still has open (docs/broker.md).
        """
        with self._files_lock:
            self._write_access_files()
            with self._lock:
                proc = self._proc
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGHUP)
                    log.info("broker: password and ACL files reloaded")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop supervision and the broker (it saves its retained messages on the way out)."""
        self._stopping.set()
        supervisor, self._supervisor = self._supervisor, None
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("broker: mosquitto did not stop within %.0f s; killing it", timeout)
                proc.kill()
                proc.wait()
        if proc is not None:
            self.pid_path.unlink(missing_ok=True)
        if supervisor is not None:
            supervisor.join(timeout)

    # -- files -----------------------------------------------------------------------------------

    def _conf_text(self) -> str:
        lines = [
            "# CrowdFab managed broker, written by the fleet at each start: edits are overwritten.",
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {self.dir / 'passwd'}",
            f"acl_file {self.dir / 'acl'}",
            "persistence true",
            f"persistence_location {self.dir}/",
            # Saved on exit too; the interval bounds what a crash loses (nodes re-send retained state).
            "autosave_interval 60",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            # Run as whoever runs the fleet, so the broker can read its 0600 files even when that is root.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            f"listener {self.port} {self.host}",
        ]
        if self._tls is not None:
            cert, key = self._tls
            lines += [f"certfile {cert}", f"keyfile {key}"]
        return "\n".join(lines) + "\n"

    def _write_access_files(self) -> None:
        entries = {self.fleet_user.username: self.fleet_user.password_hash}
        for user in self._users():
            if not PRINTER_ID_RE.match(user.username):
                log.error(
                    "broker: skipping user %r: a printer's username must be its printer id", user.username
                )
            elif user.username in entries:
                log.error("broker: skipping printer user %r: the name is taken", user.username)
            elif not _HASH_RE.match(user.password_hash):
                log.error("broker: skipping user %r: its password is not a mosquitto hash", user.username)
            else:
                entries[user.username] = user.password_hash
        if not _HASH_RE.match(self.fleet_user.password_hash):
            raise Invalid("the fleet user's password must be hashed with hash_password()", field="fleet_user")
        self.dir.mkdir(parents=True, exist_ok=True)
        _write_private(self.dir / "passwd", "".join(f"{name}:{h}\n" for name, h in entries.items()))
        _write_private(self.dir / "acl", acl_text(self.fleet_user.username))

    # -- process ---------------------------------------------------------------------------------

    @property
    def pid_path(self) -> Path:
        return self.dir / "mosquitto.pid"

    def _take_over_stale(self) -> None:
        """Stop a mosquitto an earlier run of this fleet left running on this data dir.

        It is recognised by the pid file and by its command line naming this configuration, so no
        other process is ever signalled. Where the parent-death signal works (Linux) a broker dies
        with its fleet and there is nothing to take over; elsewhere this cleans up after a crash.
        """
        try:
            pid = int(self.pid_path.read_text(encoding="ascii").strip())
        except (FileNotFoundError, ValueError):
            return
        if pid <= 0 or pid == os.getpid() or not _runs_config(pid, self.conf_path):
            self.pid_path.unlink(missing_ok=True)
            return
        log.warning("broker: mosquitto (pid %d) left running by an earlier run: stopping it", pid)
        for sig, wait in ((signal.SIGTERM, self._start_timeout), (signal.SIGKILL, 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while _runs_config(pid, self.conf_path) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _runs_config(pid, self.conf_path):
                break
        self.pid_path.unlink(missing_ok=True)

    def _launch(self, executable: str) -> None:
        """Start mosquitto and wait for its port; on failure raise with the end of its log."""
        self._take_over_stale()
        if _port_open(self.host, self.port):
            # Seen open before our process exists, it would look like success: refuse instead.
            raise Unavailable(
                f"port {self.port} on {self.host} is already in use (another broker, or a mosquitto left "
                "over from an earlier run): stop it or choose another MQTT port"
            )
        with self._lock, open(self.log_path, "ab") as out:
            if self._stopping.is_set():
                return  # stop() came while a restart was due: do not leave a broker behind
            # Startup errors before the log file opens go to stderr: keep them in the same file.
            proc = subprocess.Popen(
                [executable, "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                preexec_fn=_die_with_parent(),  # one system call before exec: see _die_with_parent
            )
            self._proc = proc
            _write_private(self.pid_path, f"{proc.pid}\n")
        deadline = time.monotonic() + self._start_timeout
        while True:
            if proc.poll() is not None:
                raise Unavailable(
                    f"mosquitto exited at start with status {proc.returncode}; its log ends:\n"
                    + self._log_tail()
                )
            if _port_open(self.host, self.port):
                # Mosquitto opens its listeners before it loads their certificates, and exits if they
                # fail: an open port may be a broker on its way out. It has to stay up a moment.
                try:
                    proc.wait(STARTUP_SETTLE_S)
                except subprocess.TimeoutExpired:
                    log.info("broker: mosquitto (pid %d) listening on %s:%d", proc.pid, self.host, self.port)
                    return
                continue  # exited: said above, with its log
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise Unavailable(
                    f"mosquitto did not accept connections on {self.host}:{self.port} within "
                    f"{self._start_timeout:.0f} s; its log ends:\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def _supervise(self, executable: str) -> None:
        backoff = self._restart_backoff
        while not self._stopping.is_set():
            with self._lock:
                proc = self._proc
            if proc is None:
                return
            started = time.monotonic()
            while proc.poll() is None and not self._stopping.wait(0.1):
                pass
            if self._stopping.is_set():
                return
            if time.monotonic() - started > self._max_restart_backoff:
                backoff = self._restart_backoff
            log.warning(
                "broker: mosquitto exited with status %s; restarting in %.1f s", proc.returncode, backoff
            )
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, self._max_restart_backoff)
            try:
                self._launch(executable)
            except Unavailable as exc:
                log.error("broker: restart failed: %s", exc.message)

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


#: prctl(2) option: the signal a process gets when the thread that started it ends.
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Optional[Callable[[], None]]:
    """What the broker's child process runs before exec so that it stops when the fleet dies.

    On Linux it asks for SIGTERM (mosquitto then saves its state and exits) when the parent goes,
    even by SIGKILL; the libc function is looked up here, in the parent, so the child only makes
    one system call and two getppid() calls, all safe between fork and exec in a threaded program.
    The signal comes when the *thread* that started the broker ends: the fleet starts it from its
    main thread, and restarts it from the supervisor thread, which lives as long as the broker.
    Elsewhere there is no such signal (None): a broker that outlives a crashed fleet is found by
    its pid file and stopped at the next start (see ``ManagedBroker._take_over_stale``).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()
    term = int(signal.SIGTERM)

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, term, 0, 0, 0)
        if os.getppid() != parent:  # the fleet died before the request took effect
            os.kill(os.getpid(), term)

    return arm


def _runs_config(pid: int, conf_path: Path) -> bool:
    """True when ``pid`` is a live (not zombie) mosquitto started with ``conf_path``."""
    proc = Path("/proc") / str(pid)
    try:
        status = (proc / "stat").read_text(encoding="ascii", errors="replace")
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    # The state is the field after the parenthesised command name, which may itself hold spaces.
    state = status.rpartition(")")[2].split()[:1]
    if state in (["Z"], ["X"]):
        return False
    return os.fsencode(str(conf_path)) in argv and any(b"mosquitto" in arg for arg in argv[:1])


def _check_fleet_username(name: str) -> None:
    if not _FLEET_USER_RE.match(name):
        raise Invalid(
            "the fleet's broker username may use only letters, digits and _ . @ - (1-64 characters)",
            field="fleet_user",
        )


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, replacing it atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
