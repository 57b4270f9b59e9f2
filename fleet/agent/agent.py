"""``Agent``: a USB printer as a fleet node (no OctoPrint): enroll once, then run until stopped."""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional

from ..node import NodeSettings, PrinterError, PrinterNode, build_node
from ..node.enroll import EnrollmentAnswer, FleetRequestError, enroll
from ..protocol import Capabilities, ProtocolError
from ..serial.streamer import StreamerConfig
from .printer import SerialPrinter

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "credentials.json"
JOURNAL_FILE = "journal.json"


class Problem(str, Enum):
    """What stopped an agent from starting; the CLI turns each into its exit code."""

    DEVICE = "device"  # the serial port could not be opened or the firmware did not answer
    UNREACHABLE = "unreachable"  # the fleet did not answer
    REFUSED = "refused"  # the fleet answered no (a bad or used enrollment code)
    NOT_ENROLLED = "not enrolled"  # no saved credentials and no code to enroll with


class AgentError(Exception):
    def __init__(self, message: str, problem: Problem) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class AgentConfig:
    port: str
    baud: int
    data_dir: Path
    fleet_url: str = ""
    #: Spent on the first start; afterwards the saved credentials are used and the code is ignored.
    enroll_code: str = ""
    name: str = "USB printer"
    capabilities: Capabilities = field(default_factory=Capabilities)
    #: Start dispatched jobs at once; when False each offer waits for ``Agent.node.accept_offer()``.
    auto_accept: bool = True
    accept_timeout_s: float = 300.0
    keepalive_s: int = 30
    #: While the printer is unplugged or silent, try to connect again this often.
    reconnect_interval_s: float = 5.0
    streamer: StreamerConfig = field(default_factory=StreamerConfig)


def load_credentials(data_dir: Path) -> Optional[EnrollmentAnswer]:
    """The enrollment saved in ``data_dir``, or None when there is none."""
    path = data_dir / CREDENTIALS_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AgentError(
            f"cannot read {path}: {exc}; remove it and enroll again", Problem.NOT_ENROLLED
        ) from exc
    try:
        return EnrollmentAnswer.from_json(raw)
    except ProtocolError as exc:
        raise AgentError(f"{path}: {exc.message}; remove it and enroll again", Problem.NOT_ENROLLED) from exc


def save_credentials(data_dir: Path, enrollment: EnrollmentAnswer) -> Path:
    """Write the enrollment readable by its owner only (0600), replacing any earlier one."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CREDENTIALS_FILE
    data = enrollment.to_json()
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.chmod(partial, 0o600)  # O_CREAT's mode does not apply to a file that already existed
    os.replace(partial, path)
    return path


Enroller = Callable[[str, str, str, dict[str, Any]], EnrollmentAnswer]


class Agent:
    """One printer's serial link and node: ``start()``, then ``run(stop)`` until ``stop`` is set."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        enroller: Enroller = enroll,
        printer: Optional[SerialPrinter] = None,
    ) -> None:
        self.config = config
        self.printer = printer or SerialPrinter(
            config.port, config.baud, config.data_dir, config=config.streamer
        )
        self._enroller = enroller
        self._node: Optional[PrinterNode] = None
        self.enrollment: Optional[EnrollmentAnswer] = None

    @property
    def node(self) -> Optional[PrinterNode]:
        return self._node

    @property
    def printer_id(self) -> Optional[str]:
        return self.enrollment.printer_id if self.enrollment else None

    def start(self) -> None:
        """Connect the printer, enroll if needed, and start the node; AgentError says what failed."""
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.printer.connect()
        except PrinterError as exc:
            raise AgentError(str(exc), Problem.DEVICE) from exc
        try:
            self.enrollment = load_credentials(self.config.data_dir) or self._enroll()
        except AgentError:
            self.printer.close()
            raise
        self._node = self._build_node(self.enrollment)
        self.printer.bind(self._node)
        self._node.start()
        log.info("printer %s runs as fleet node %s", self.config.port, self.enrollment.printer_id)

    def run(self, stop: threading.Event) -> None:
        """Keep the printer connected until ``stop`` is set, then close everything."""
        try:
            while not stop.wait(self.config.reconnect_interval_s):
                if not self.printer.connected:
                    try:
                        self.printer.connect()
                    except PrinterError as exc:
                        log.warning("%s (trying again in %g s)", exc, self.config.reconnect_interval_s)
        finally:
            self.close()

    def close(self, timeout: float = 5.0) -> None:
        """Publish ``offline``, stop the node and release the port."""
        node, self._node = self._node, None
        self.printer.bind(None)
        if node is not None:
            node.close(timeout)
        self.printer.close()

    def _enroll(self) -> EnrollmentAnswer:
        c = self.config
        if not (c.fleet_url and c.enroll_code):
            raise AgentError(
                f"not enrolled yet (no {CREDENTIALS_FILE} in {c.data_dir}): give the fleet's URL and an "
                "enrollment code from a manager",
                Problem.NOT_ENROLLED,
            )
        caps = c.capabilities
        body: dict[str, Any] = {
            "volume": caps.volume.to_dict() if caps.volume else None,
            "nozzle_diameter": caps.nozzle_diameter,
            "material": caps.material,
        }
        try:
            enrollment = self._enroller(
                c.fleet_url, c.enroll_code, c.name, {k: v for k, v in body.items() if v is not None}
            )
        except FleetRequestError as exc:
            problem = Problem.REFUSED if exc.status is not None else Problem.UNREACHABLE
            raise AgentError(str(exc), problem) from exc
        save_credentials(c.data_dir, enrollment)
        log.info("enrolled with %s as printer %s", c.fleet_url, enrollment.printer_id)
        return enrollment

    def _build_node(self, enrollment: EnrollmentAnswer) -> PrinterNode:
        settings = NodeSettings(
            auto_accept=self.config.auto_accept,
            accept_timeout_s=self.config.accept_timeout_s,
            capabilities=self.config.capabilities,
        )
        return build_node(
            enrollment.printer_id,
            enrollment.mqtt,
            self.printer,
            self.config.data_dir / JOURNAL_FILE,
            enrollment.token,
            settings,
            keepalive=self.config.keepalive_s,
        )
