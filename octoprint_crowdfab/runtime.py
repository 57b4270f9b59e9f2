"""The plugin's life cycle as a plain object: enroll when needed, run the node, report how the link is.

Nothing here blocks OctoPrint: enrollment and connecting happen on a background thread that retries
until it succeeds or the plugin shuts down.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional

from fleet.errors import Invalid
from fleet.geometry import Box
from fleet.node import NodeSettings, PrinterNode, PrinterPort
from fleet.protocol import Capabilities

from .enroll import BrokerAddress, EnrollmentAnswer, FleetRequestError, enroll

log = logging.getLogger(__name__)


class LinkState(str, Enum):
    NOT_ENROLLED = "not enrolled"
    ENROLLING = "enrolling"
    CONNECTING = "connecting"
    ONLINE = "online"
    OFFLINE = "offline"
    #: Enrolled, but the node could not be built (the message says why).
    BROKEN = "broken"


@dataclass(frozen=True)
class PluginConfig:
    fleet_url: str = ""
    enroll_code: str = ""
    printer_id: str = ""
    printer_token: str = ""
    mqtt: Optional[BrokerAddress] = None
    auto_accept: bool = True
    accept_timeout_s: float = 300.0
    material: Optional[str] = None
    volume: Optional[Box] = None
    nozzle_diameter: Optional[float] = None
    #: Seconds between MQTT keepalives: the fleet learns of a vanished printer after 1.5 times this.
    keepalive_s: int = 30

    @classmethod
    def from_settings(cls, get: Callable[[list[str]], Any]) -> PluginConfig:
        """Read the plugin's settings through ``get([key, ...])`` (OctoPrint's ``_settings.get``)."""
        mqtt = get(["mqtt"]) or {}
        host = mqtt.get("host")
        volume = None
        if get(["volume"]):
            try:
                volume = Box.from_dict(get(["volume"]), "volume")
            except Invalid as exc:
                log.error("ignoring the volume setting: %s", exc.message)
        return cls(
            fleet_url=get(["fleet_url"]) or "",
            enroll_code=get(["enroll_code"]) or "",
            printer_id=get(["printer_id"]) or "",
            printer_token=get(["printer_token"]) or "",
            mqtt=BrokerAddress(
                host,
                int(mqtt.get("port") or 1883),
                mqtt.get("username"),
                mqtt.get("password"),
                bool(mqtt.get("tls")),
            )
            if host
            else None,
            auto_accept=bool(get(["auto_accept"])),
            accept_timeout_s=float(get(["accept_timeout_s"]) or 300.0),
            material=get(["material"]) or None,
            volume=volume,
            nozzle_diameter=float(get(["nozzle_diameter"])) if get(["nozzle_diameter"]) else None,
            keepalive_s=max(5, min(300, int(get(["mqtt_keepalive_s"]) or 30))),
        )

    @property
    def enrolled(self) -> bool:
        return bool(self.printer_id and self.printer_token and self.mqtt)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(self.volume, self.nozzle_diameter, self.material)


NodeFactory = Callable[[PluginConfig, PrinterPort, Path, Callable[[bool], None]], PrinterNode]


def build_mqtt_node(
    config: PluginConfig, printer: PrinterPort, journal: Path, on_link_change: Callable[[bool], None]
) -> PrinterNode:
    """The production node: a real MQTT link to the broker the fleet named at enrollment."""
    from fleet.node import build_node

    assert config.mqtt is not None
    settings = NodeSettings(
        auto_accept=config.auto_accept,
        accept_timeout_s=config.accept_timeout_s,
        capabilities=config.capabilities,
    )
    return build_node(
        config.printer_id,
        config.mqtt,
        printer,
        journal,
        config.printer_token,
        settings,
        keepalive=config.keepalive_s,
        on_link_change=on_link_change,
    )


class Runtime:
    """Owns the node for one configuration; replace the whole runtime when the settings change."""

    def __init__(
        self,
        config: PluginConfig,
        printer: PrinterPort,
        data_folder: Path,
        save_enrollment: Callable[[EnrollmentAnswer], None],
        *,
        printer_name: str = "OctoPrint",
        node_factory: NodeFactory = build_mqtt_node,
        retry_s: float = 30.0,
    ) -> None:
        self.config = config
        self._printer = printer
        self._journal = data_folder / "journal.json"
        self._save_enrollment = save_enrollment
        self._printer_name = printer_name
        self._node_factory = node_factory
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._node: Optional[PrinterNode] = None
        self._state = LinkState.NOT_ENROLLED
        self._error = ""

    @property
    def node(self) -> Optional[PrinterNode]:
        return self._node

    def start(self) -> None:
        if self.config.enrolled or (self.config.fleet_url and self.config.enroll_code):
            self._thread = threading.Thread(target=self._run, name="crowdfab-runtime", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._node is not None:
            self._node.close(timeout)
            self._node = None

    def status(self) -> dict[str, Any]:
        """What the plugin's API reports: link state, printer id, the current job and any pending offer."""
        node = self._node
        offer = node.pending_offer() if node else None
        job = node.current_job() if node else None
        ref = offer.command.job if offer else None
        return {
            "link": self._state.value,
            "error": self._error,
            "printer_id": self.config.printer_id or None,
            "job": None
            if job is None
            else {"job_id": job.job_id, "phase": job.phase.value, "path": job.path},
            "pending_offer": None
            if ref is None or offer is None
            else {
                "job_id": ref.job_id,
                "filename": ref.filename,
                "size": ref.size,
                "estimated_s": ref.estimated_s,
                "deadline": offer.deadline,
            },
        }

    def _run(self) -> None:
        while not self.config.enrolled and not self._stop.is_set():
            self._state = LinkState.ENROLLING
            try:
                self._enroll()
            except FleetRequestError as exc:
                self._error = str(exc)
                log.error("enrolling with the fleet failed (retrying in %g s): %s", self._retry_s, exc)
                self._stop.wait(self._retry_s)
        if self._stop.is_set():
            return
        self._state = LinkState.CONNECTING
        try:
            self._node = self._node_factory(self.config, self._printer, self._journal, self._link_changed)
            self._node.start()
        except Exception as exc:
            self._state, self._error = LinkState.BROKEN, f"could not start the fleet node: {exc}"
            log.exception("could not start the fleet node")

    def _enroll(self) -> None:
        c = self.config
        caps = Capabilities(c.volume, c.nozzle_diameter, c.material)
        enrollment = enroll(c.fleet_url, c.enroll_code, self._printer_name, caps)
        self._save_enrollment(enrollment)
        self.config = PluginConfig(
            **{
                **c.__dict__,
                "enroll_code": "",
                "printer_id": enrollment.printer_id,
                "printer_token": enrollment.token,
                "mqtt": enrollment.mqtt,
            }
        )
        self._error = ""
        log.info("enrolled with the fleet as printer %s", enrollment.printer_id)

    def _link_changed(self, up: bool) -> None:
        self._state = LinkState.ONLINE if up else LinkState.OFFLINE
        if up:
            self._error = ""
