"""A plugin the tests drop into OctoPrint's ``plugins/`` folder: a node on the real adapter and a
recording link, so a test can hand it commands and read what it published (through this plugin's API)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Callable

import flask
import octoprint.plugin

from fleet.node import HttpFetcher, PrinterNode
from fleet.protocol import parse_topic
from octoprint_crowdfab.adapter import ChangeCallback, OctoPrintPrinter, forward_print_event

PROBE_TOKEN = "probe-printer-token"
PROBE_ID = "probe-1"


class RecordingLink:
    def __init__(self) -> None:
        self.connected = False
        self.on_connect: Callable[[], None] = lambda: None
        self.published: list[dict[str, Any]] = []
        self.handlers: dict[str, Callable[[str, bytes], None]] = {}

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None], qos: int = 1) -> None:
        self.handlers[topic_filter] = handler

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        channel = parse_topic(topic)[1].value
        self.published.append({"channel": channel, "payload": payload.decode("utf-8"), "retain": retain})

    def start(self) -> None:
        self.connected = True
        self.on_connect()

    def close(self, timeout: float = 5.0) -> None:
        self.connected = False


class ProbePlugin(
    octoprint.plugin.StartupPlugin, octoprint.plugin.EventHandlerPlugin, octoprint.plugin.SimpleApiPlugin
):
    node: PrinterNode | None = None

    def on_after_startup(self) -> None:
        self.link = RecordingLink()
        port = OctoPrintPrinter(self._printer, self._file_manager)
        journal = Path(self.get_plugin_data_folder()) / "journal.json"
        self.node = PrinterNode(self.link, PROBE_ID, port, journal, HttpFetcher(PROBE_TOKEN))
        self.link.on_connect = self.node.on_connected
        self._printer.register_callback(ChangeCallback(self.node.printer_changed))
        self.node.start()

    def on_event(self, event: str, payload: Any) -> None:
        if self.node is not None:  # events start before on_after_startup
            forward_print_event(self.node, event, payload)

    def is_api_protected(self) -> bool:
        return True

    def get_api_commands(self) -> dict[str, list[str]]:
        return {"deliver": ["payload"]}

    def on_api_command(self, command: str, data: dict[str, Any]) -> Any:
        for topic, handler in self.link.handlers.items():
            handler(topic, base64.b64decode(data["payload"]))
        return flask.jsonify(delivered=True)

    def on_api_get(self, request: Any) -> Any:
        return flask.jsonify(published=list(self.link.published))


__plugin_name__ = "CrowdFab test probe"
__plugin_pythoncompat__ = ">=3.9,<4"
__plugin_implementation__ = ProbePlugin()
