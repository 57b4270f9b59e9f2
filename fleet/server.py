"""Wires the fleet together from its configuration and serves the HTTP app with waitress."""

from __future__ import annotations

import fcntl
import gc
import json
import logging
import os
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from .app import FleetApp, build
from .app.printer_view import PrinterView
from .config import FleetConfig
from .errors import FleetError, Unavailable
from .http_protocol import API_PREFIX
from .lab import MAX_UPLOAD_CEILING
from .notify.worker import NOTIFY_SCAN, NotifyOptions, OutboxWorker
from .store import BlobStore, Store, open_store
from .store.base import PHOTO_KINDS

if TYPE_CHECKING:
    from .duties import Duties
    from .dynsec import DynsecAccounts
    from .fleetlink import FleetLink
    from .http_protocol import BrokerAddress
    from .store.changes import ChangeNote

log = logging.getLogger(__name__)

#: The shared-subscription group of fleet processes on a shared broker (``fleet.dynsec``).
DEFAULT_SHARE_GROUP = "crowdfab"
#: How often a process on SQLite checks an unchanged printer's status against the store (for edits
#: made by the command line on the same file). On PostgreSQL the change notes say when, and whose.
SQLITE_STATUS_RECHECK_S = 30.0
#: The receive buffer of a process's ingest connection (bytes asked of the kernel, which holds some
#: 330 kB of messages in it): the broker's send buffer in front of it (which the kernel grows up to
#: tcp_wmem's maximum, 4 MiB by default) already rides out a pause of the reader, so this side need
#: only keep the line full. A status is about 400 bytes.
INGEST_RECEIVE_BUFFER = 256 * 1024
#: The cyclic collector's thresholds in a serving process (CPython's defaults: 700, 10, 10).
GC_THRESHOLDS = (20_000, 20, 10)

#: The managed broker's default port: off 1883, so a system Mosquitto on the same machine is left alone.
DEFAULT_MQTT_PORT = 18830
FLEET_MQTT_USER = "crowdfab_fleet"  # "_" is not allowed in printer ids: no printer can take this name
FLEET_CREDENTIALS_FILE = "fleet-mqtt.json"
FLEET_CLIENT_ID_FILE = "fleet-mqtt-client-id"


@dataclass(frozen=True)
class LinkOptions:
    """How ``serve`` links the fleet to its printers."""

    #: Port of the managed broker (ignored with ``mqtt_url``).
    mqtt_port: int = DEFAULT_MQTT_PORT
    #: An external broker (mqtt://user:pass@host:port); then no broker is managed.
    mqtt_url: Optional[str] = None
    #: With ``mqtt_url``: the broker is shared by several fleet processes and keeps printer logins in its
    #: dynamic security plugin, which the URL's login administers (docs/broker.md, "A shared broker").
    mqtt_dynsec: bool = False
    #: Subscribe to printers through this MQTT 5 shared-subscription group, so the fleet processes on one
    #: broker split the messages; default: ``crowdfab`` with ``mqtt_dynsec``, none otherwise.
    share_group: Optional[str] = None
    #: The host nodes connect to; default: the HTTP host, or this machine's name when that is a wildcard.
    mqtt_public_host: Optional[str] = None
    #: The fleet's URL as nodes reach it (job downloads); default: http://<public host>:<port>.
    public_url: Optional[str] = None
    #: How often the dispatch loop looks for work even when nothing reported a change.
    dispatch_interval_s: float = 5.0
    #: How long a printer that declined a job is not offered it again.
    decline_cooldown_s: float = 300.0
    #: A once-only duty's lease (see fleet.duties): how long it lasts, and how often it is renewed. A
    #: process that dies hands its duties to another within about ``duty_ttl_s + duty_renew_s``.
    duty_ttl_s: float = 5.0
    duty_renew_s: float = 1.0
    #: How often the holder of the sweeps duty forgets what has expired (keys, photos, orphan files).
    sweep_interval_s: float = 3600.0


@dataclass
class Fleet:
    """The fleet's parts, opened from one configuration; ``close()`` releases them."""

    config: FleetConfig
    store: Store
    blobs: BlobStore
    app: FleetApp

    @classmethod
    def open(cls, config: FleetConfig) -> Fleet:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(config.data_dir, 0o700)
        store = open_store(config.database_url, config.data_dir)
        blobs = BlobStore(config.blob_dir)
        return cls(config, store, blobs, build(store, blobs))

    def close(self) -> None:
        self.store.close()


def make_server(fleet: Fleet) -> Any:
    """A waitress server bound to the configured address (port 0 picks a free one)."""
    from waitress.server import create_server

    from .api import body_limit, create_app
    from .web import session_secret

    # Each open dashboard holds one of waitress's threads for its live updates: leave most for requests.
    live_clients = max(1, fleet.config.threads // 2)
    app = create_app(
        fleet.app,
        {
            "SECRET_KEY": session_secret(fleet.config.data_dir),
            "CROWDFAB_LIVE_CLIENTS": live_clients,
            "CROWDFAB_TRUSTED_PROXIES": fleet.config.trusted_proxies,
            "CROWDFAB_METRICS_ACCESS": fleet.config.metrics,
        },
    )
    server = create_server(
        app,
        host=fleet.config.host,
        port=fleet.config.port,
        threads=fleet.config.threads,
        # Waitress reads a whole body (spooling it to a temporary file) before the app sees it: at the
        # lab's limit, an oversized or endless upload is cut off there rather than at the ceiling.
        max_request_body_size=min(body_limit(fleet.app), MAX_UPLOAD_CEILING) + 1,
        ident="crowdfab",
        # Lets a live-update stream notice that its browser went away, freeing the thread it holds.
        channel_request_lookahead=5,
    )

    def follow_body_limit(limit: int) -> None:
        server.adj.max_request_body_size = min(limit, MAX_UPLOAD_CEILING) + 1  # waitress refuses at >=

    app.extensions["crowdfab.follow_body_limit"] = follow_body_limit
    return server


def public_host(config: FleetConfig, options: LinkOptions) -> str:
    if options.mqtt_public_host:
        return options.mqtt_public_host
    if config.host in ("", "0.0.0.0", "::"):  # noqa: S104 (recognising the wildcard, not binding it)
        return socket.getfqdn() or socket.gethostname()
    return config.host


def fleet_mqtt_password(data_dir: Path) -> str:
    """The fleet's own broker password: made once, kept in the data dir, readable only by its owner."""
    path = data_dir / FLEET_CREDENTIALS_FILE
    if path.exists():
        return str(json.loads(path.read_text())["password"])
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"username": FLEET_MQTT_USER, "password": password}, f)
    return password


#: The client id slot each data dir's fleet holds in this process, with the open file that locks it.
_CLIENT_ID_SLOTS: dict[Path, tuple[str, int]] = {}
_CLIENT_ID_LOCK = threading.Lock()


def fleet_client_id(data_dir: Path) -> str:
    """The fleet's MQTT client id: made once per data dir and kept, so its broker session survives.

    The broker holds what printers report while the fleet is down (a crash, a restart) and hands it
    over when the fleet is back under the same id; one id per data dir keeps two fleets apart.
    Several fleet processes sharing a data dir (one PostgreSQL behind them) must not share an id
    (the broker would have each push the other off): each holds a numbered slot, locked for as long
    as it runs, and the first process takes slot 0, the kept id itself.
    """
    key = data_dir.resolve()
    with _CLIENT_ID_LOCK:
        held = _CLIENT_ID_SLOTS.get(key)
        if held is not None:
            return held[0]
        base = _kept_client_id(data_dir)
        slot = 0
        while True:
            fd = os.open(data_dir / f".{FLEET_CLIENT_ID_FILE}.{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                slot += 1
                continue
            client_id = base if slot == 0 else f"{base}-{slot}"
            _CLIENT_ID_SLOTS[key] = (client_id, fd)  # the lock lives as long as the process
            return client_id


def _kept_client_id(data_dir: Path) -> str:
    path = data_dir / FLEET_CLIENT_ID_FILE
    try:
        kept = path.read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        kept = ""
    if kept.isprintable() and 0 < len(kept) <= 64:
        return kept
    path.unlink(missing_ok=True)  # empty or damaged (a power cut as it was written): make a new one
    client_id = f"crowdfab-fleet-{secrets.token_hex(6)}"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(client_id + "\n", encoding="ascii")
    try:
        os.link(tmp, path)  # whole or not at all, and never over one another process made first
    except FileExistsError:
        client_id = path.read_text(encoding="ascii").strip()
    finally:
        tmp.unlink()
    return client_id


def sqlite_database(config: FleetConfig) -> Optional[Path]:
    """The SQLite file the fleet's database is, or None for PostgreSQL (or SQLite in memory)."""
    if config.database_url is None:
        return config.data_dir / "fleet.db"
    from sqlalchemy.engine import make_url

    url = make_url(config.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


class SingleProcessLock:
    """SQLite serves one fleet process at a time: a lock beside the database file, held while serving.

    A second ``serve`` on the same file is refused at once, naming the file and what to do, instead
    of two processes each dispatching on their own (SQLite has no way to tell one process's changes
    to another's live pages or hand duties over). The lock goes with the process, however it ends.
    """

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".serving")
        self._fd: Optional[int] = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise Unavailable(
                f"another fleet process{f' (pid {holder})' if holder.isdigit() else ''} already serves the "
                f"SQLite database {self.database}: SQLite serves one fleet process at a time. Stop that one "
                "first; to run several fleet processes together, give them one PostgreSQL database "
                "(--database-url postgresql+psycopg://user@host/dbname) and see docs/operations.md"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the lock goes with the descriptor
            self._fd = None


class FleetRuntime:
    """Everything ``crowdfab-fleet serve`` runs: the broker (unless external), the HTTP server and the
    fleet link, started with :meth:`start` and stopped, in reverse order, with :meth:`close`."""

    def __init__(
        self,
        config: FleetConfig,
        options: LinkOptions = LinkOptions(),
        notify: Optional[NotifyOptions] = None,
    ) -> None:
        self.config = config
        self.options = options
        self.notify = notify or NotifyOptions()
        self.fleet: Optional[Fleet] = None
        self.url = ""
        self.base_url = ""
        self.mqtt_port = options.mqtt_port
        self.duties: Optional[Duties] = None
        self._stops: list[Callable[[], None]] = []

    @property
    def app(self) -> FleetApp:
        assert self.fleet is not None, "start() the runtime first"
        return self.fleet.app

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        # Imported here: the link's modules are only needed by a serving fleet.
        from .broker import BrokerUser, ManagedBroker, find_mosquitto, hash_password
        from .duties import DISPATCH, SWEEPS, Duties
        from .fleetlink import FleetLink
        from .mqtt import BrokerAddress, MqttLink
        from .store.changes import ChangeListener

        config, options = self.config, self.options
        if options.mqtt_dynsec and options.mqtt_url is None:
            raise Unavailable("a shared broker (--mqtt-dynsec) needs its address and login: give --mqtt-url")
        if options.mqtt_url is None:
            find_mosquitto()  # fails early, with how to install it
        sqlite = sqlite_database(config)
        if sqlite is not None:
            lock = SingleProcessLock(sqlite)
            lock.acquire()
            self._stops.append(lock.release)
        share_group = options.share_group
        if share_group is None and options.mqtt_dynsec:
            share_group = DEFAULT_SHARE_GROUP
        self.fleet = fleet = Fleet.open(config)
        self._stops.append(fleet.close)
        # Each process's own: a staging file is locked while its upload runs, so only the dead's go.
        abandoned = fleet.blobs.remove_abandoned_staging()
        if abandoned:
            log.info("removed %d unfinished upload(s) left by an earlier run", abandoned)
        node_host = public_host(config, options)
        if options.mqtt_url is not None:
            address = BrokerAddress.from_url(options.mqtt_url)
            fleet.app.enrollment.node_mqtt = BrokerAddress(
                options.mqtt_public_host or address.host, address.port, tls=address.tls
            )
            if options.mqtt_dynsec:
                fleet.app.enrollment.accounts = self._shared_broker_accounts(address, fleet)
        else:
            password = fleet_mqtt_password(config.data_dir)
            self.mqtt_port = options.mqtt_port or free_port()
            broker = ManagedBroker(
                config.data_dir,
                port=self.mqtt_port,
                host=config.host,
                fleet_user=BrokerUser(FLEET_MQTT_USER, hash_password(password)),
                users=fleet.app.enrollment.broker_users,
            )
            broker.start()
            self._stops.append(broker.stop)
            fleet.app.hooks.on_credentials_changed(broker.reload)
            local = "127.0.0.1" if config.host in ("", "0.0.0.0", "::") else config.host  # noqa: S104
            address = BrokerAddress(local, self.mqtt_port, FLEET_MQTT_USER, password)
            fleet.app.enrollment.node_mqtt = BrokerAddress(node_host, self.mqtt_port)
        server = make_server(fleet)
        thread = threading.Thread(target=server.run, name="crowdfab-http", daemon=True)
        thread.start()

        def close_in_loop() -> None:
            # Idle keep-alive connections would keep waitress's loop running: close them too.
            for channel in list(server.active_channels.values()):
                channel.will_close = True
            server.close()

        def stop_server() -> None:
            # Run in the server's own loop, woken by its trigger: sockets closed from another thread
            # while the loop waits on them make its select() fail (EBADF), and the wait took a second.
            server.trigger.pull_trigger(close_in_loop)
            thread.join(10)
            server.task_dispatcher.shutdown()

        self._stops.append(stop_server)
        host, port = server.effective_host, server.effective_port
        self.url = f"http://{host}:{port}"
        self.base_url = options.public_url or f"http://{node_host}:{port}"
        # Alone, a lasting session: nothing a printer reports while the fleet is down is lost to it. In a
        # share group, a clean one: Mosquitto goes on handing a lasting session's share of the messages
        # to it while its process is gone, instead of to the processes still running.
        client_id = fleet_client_id(config.data_dir)
        mqtt = MqttLink(
            client_id,
            address,
            clean_session=share_group is not None,
            mqtt5=share_group is not None,
            manual_ack=True,  # an event is acknowledged to the broker once handled, not once queued
            # Statuses are latest values: when ingest falls behind, the broker drops statuses past what
            # already waits for the fleet instead of the socket holding seconds more of them (see
            # MqttLink and INGEST_RECEIVE_BUFFER).
            receive_buffer=INGEST_RECEIVE_BUFFER,
        )
        # Commands go out on a connection of their own (see FleetLink.commands): nothing comes in on it.
        commands = MqttLink(f"{client_id}-cmd", address)
        fleet.app.health.broker = lambda: mqtt.connected and commands.connected
        # The once-only duties: this process's share among those on the database (all of them on SQLite).
        duties = Duties(
            fleet.store,
            client_id,
            ttl_s=options.duty_ttl_s,
            renew_s=options.duty_renew_s,
            margin_s=min(1.0, options.duty_renew_s),
            exclusive=sqlite is not None,
        )
        self.duties = duties
        fleet.app.health.duties = duties.held
        link = FleetLink(
            fleet.app,
            mqtt,
            base_url=self.base_url,
            dispatch_interval_s=options.dispatch_interval_s,
            decline_cooldown_s=options.decline_cooldown_s,
            dispatch_duty=lambda: duties.holds(DISPATCH),
            queued=True,
            share_group=share_group,
            commands=commands,
            # On PostgreSQL a printer's unchanged status is checked against the store again only when a
            # change note names the printer (below): with several processes each one sees every
            # printer's statuses, and rechecking them all on a timer filled the ingest thread at
            # thousands of printers. SQLite has no notes: a timer catches the command line's edits.
            status_recheck_s=None if fleet.store.backend == "postgresql" else SQLITE_STATUS_RECHECK_S,
        )
        duties.add(DISPATCH, on_gain=link.take_over, on_loss=link.hand_over)
        duties.every(SWEEPS, options.sweep_interval_s, lambda: sweep(fleet.app))
        link.start()
        self._stops.append(link.close)
        commands.start()
        self._stops.append(commands.close)
        mqtt.start()
        self._stops.append(mqtt.close)
        # Notifications: what the parts above queue is sent from here, never by them. Every process
        # delivers (a claim skips the rows another holds); the scans for printers offline and jobs
        # waiting too long are a once-only duty, so each overdue event is raised by one process.
        fleet.store.notice_delays.update(dict.fromkeys(PHOTO_KINDS, self.notify.photo_wait_s))
        outbox = OutboxWorker(fleet.store, self.notify, metrics=fleet.app.metrics)
        fleet.app.hooks.on_outbox(outbox.wake)

        def scan_overdue() -> None:
            outbox.scan()

        duties.every(NOTIFY_SCAN, self.notify.scan_every_s, scan_overdue)
        outbox.start()
        self._stops.append(outbox.close)
        if fleet.store.backend == "postgresql":
            assert config.database_url is not None
            listener = ChangeListener(
                config.database_url,
                on_note=lambda note: heard_elsewhere(fleet.app, link, note),
                on_missed=lambda: missed_elsewhere(fleet.app, link),
            )
            listener.start()
            self._stops.append(listener.close)
            # Scheduling passes read again only the printers the notes name (all of them after a gap).
            view = PrinterView(fleet.store, trusted=lambda: listener.listening)
            fleet.app.hooks.on_change(view.changed)
            fleet.app.dispatcher.list_printers = view.printers
        duties.start()
        # Stopped first: the duties are given back at once, so another process takes them over.
        self._stops.append(duties.close)

    def _shared_broker_accounts(self, address: BrokerAddress, fleet: Fleet) -> DynsecAccounts:
        """The admin link to a shared broker's dynamic security plugin; at every connect it makes sure
        of the fleet's roles and removes the logins of printers revoked meanwhile."""
        from .dynsec import DynsecAccounts
        from .mqtt import MqttLink

        accounts: Optional[DynsecAccounts] = None

        def settle() -> None:
            assert accounts is not None
            try:
                accounts.ensure_fleet_roles()
                accounts.sync(
                    fleet.store.revoked_printer_ids,
                    lambda: [c.printer_id for c in fleet.store.active_credentials()],
                )
            except FleetError as exc:
                log.error("shared broker: could not check its logins: %s", exc.message)

        def connected() -> None:
            # Answers arrive on the link's network thread, which runs this callback: wait elsewhere.
            threading.Thread(target=settle, name="dynsec-settle", daemon=True).start()

        admin = MqttLink(f"{fleet_client_id(fleet.config.data_dir)}-admin", address, on_connect=connected)
        accounts = DynsecAccounts(admin)
        admin.start()
        self._stops.append(admin.close)
        return accounts

    def close(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:
                log.exception("while stopping the fleet")


def sweep(app: FleetApp) -> None:
    """Forget what has expired (the sweeps duty: one fleet process at a time does it)."""
    orphans = app.intake.remove_orphan_blobs()
    if orphans:
        log.info("removed %d stored file(s) no job refers to (uploads cut off by a stop)", orphans)
    expired = app.intake.remove_expired_submission_keys()
    if expired:
        log.info("forgot %d submission idempotency key(s) older than a day", expired)
    photos = app.snapshots.remove_expired()
    if photos:
        log.info("forgot %d photo(s) of plates past their retention", photos)


def heard_elsewhere(app: FleetApp, link: FleetLink, note: ChangeNote) -> None:
    """Another fleet process committed a change: this one's live pages and dispatch hear of it, and
    a printer's next status is checked against the store in full."""
    app.ctx.changed_elsewhere(note)
    for printer_id in note.printer_ids:
        link.recheck_statuses(printer_id)


def missed_elsewhere(app: FleetApp, link: FleetLink) -> None:
    """Other processes' changes may have gone unheard: look at everything again."""
    app.ctx.missed_changes()
    link.recheck_statuses()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settle_heap() -> None:
    """Tune the cyclic garbage collector for a long-running service, once it has started.

    A fleet allocates a few containers for every message it reads. At CPython's default thresholds, a
    process taking 10,000 statuses a second ran a full collection every two seconds, 155 ms on average
    (up to 400 ms) with the whole process stopped, most of it walking what starting made (modules, the
    app), which lives as long as the process. Frozen, that is walked no more, and ``GC_THRESHOLDS``
    spaces collections out: 5 full collections in the same five minutes, and young ones of some 20 ms.
    Memory that only cycles hold waits a little longer to be freed.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def serve(
    config: FleetConfig,
    options: LinkOptions = LinkOptions(),
    notify: Optional[NotifyOptions] = None,
    *,
    drain_s: float = 0.0,
) -> None:
    """Run the broker (unless external), the fleet link, the outbox and the HTTP server until Ctrl-C
    or SIGTERM.

    On SIGTERM the process first answers its health check with 503 ("draining") for ``drain_s``
    seconds while still serving, so a load balancer sends new requests elsewhere before it stops.
    """
    runtime = FleetRuntime(config, options, notify)
    runtime.start()
    settle_heap()
    stop = threading.Event()

    def on_terminate(_signum: int, _frame: object) -> None:
        runtime.app.health.drain()
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_terminate)
    try:
        nodes = runtime.app.enrollment.node_mqtt
        assert nodes is not None  # set by start(), managed broker or not
        print(
            f"CrowdFab fleet serving the dashboard on {runtime.url}/ and the API on "
            f"{runtime.url}{API_PREFIX} (data in {config.data_dir}); "
            f"printers: MQTT {nodes.host}:{nodes.port}, files from {runtime.base_url}",
            flush=True,
        )
        stop.wait()
        if drain_s > 0:
            log.info("stopping: reporting draining for %.1f s so requests go elsewhere first", drain_s)
            time.sleep(drain_s)
    except KeyboardInterrupt:
        pass
    finally:
        runtime.close()
