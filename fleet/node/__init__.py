"""The printer-side node: status out, commands in, a job journal; it knows no OctoPrint and no serial port.

A node drives one printer through :class:`PrinterPort`; OctoPrint's printer (in the plugin) and the
serial streamer (in the headless agent) are two adapters of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from ..protocol import node_client_id
from .download import DownloadError, Fetcher, HttpFetcher
from .journal import ACTIVE, FINISHED, FleetJob, JobPhase, Journal, Offer
from .node import Link, NodeSettings, PrinterNode
from .plate import PlateReporter, SnapshotError, Webcam, WebcamLogin
from .printer import FLEET_FOLDER, PrinterError, PrinterPort, PrinterSnapshot, PrintOutcome
from .rules import availability_will

if TYPE_CHECKING:
    from ..mqtt import BrokerAddress

__all__ = [
    "ACTIVE",
    "FINISHED",
    "FLEET_FOLDER",
    "DownloadError",
    "Fetcher",
    "FleetJob",
    "HttpFetcher",
    "JobPhase",
    "Journal",
    "Link",
    "NodeSettings",
    "Offer",
    "PlateReporter",
    "PrintOutcome",
    "PrinterError",
    "PrinterNode",
    "PrinterPort",
    "PrinterSnapshot",
    "SnapshotError",
    "Webcam",
    "WebcamLogin",
    "availability_will",
    "build_node",
]


def build_node(
    printer_id: str,
    address: BrokerAddress,
    printer: PrinterPort,
    journal_path: Path,
    token: str,
    settings: Optional[NodeSettings] = None,
    *,
    keepalive: int = 30,
    min_backoff: float = 1.0,
    max_backoff: Optional[float] = None,
    on_link_change: Optional[Callable[[bool], None]] = None,
    plate: Optional[PlateReporter] = None,
) -> PrinterNode:
    """A node on a real MQTT link, with its last will set and its connect callback wired.

    ``max_backoff`` None: the link's default (``fleet.mqtt.MAX_BACKOFF_S``).
    """
    from ..mqtt import MAX_BACKOFF_S, MqttLink

    node: Optional[PrinterNode] = None

    def connected() -> None:
        if node is not None:
            node.on_connected()
        if on_link_change is not None:
            on_link_change(True)

    def disconnected() -> None:
        if on_link_change is not None:
            on_link_change(False)

    link = MqttLink(
        node_client_id(printer_id, address.password),  # not guessable by other printers
        address,
        will=availability_will(printer_id),
        keepalive=keepalive,
        min_backoff=min_backoff,
        max_backoff=MAX_BACKOFF_S if max_backoff is None else max_backoff,
        on_connect=connected,
        on_disconnect=disconnected,
    )
    fetcher = HttpFetcher(token)
    node = PrinterNode(
        link, printer_id, printer, journal_path, fetcher, settings or NodeSettings(), plate=plate
    )
    return node
