from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

from fleet.node import NodeSettings, PrinterNode
from fleet.node.worker import InlineExecutor
from fleet.protocol import Channel, Command, CommandType, JobRef, encode_command, topic

from .fakes import Clock, FakeFetcher, FakeLink, FakePrinter

PRINTER_ID = "p-1"


@dataclass
class Harness:
    """A node on a fake link and printer, running its work inline so each call finishes before it returns."""

    tmp: Path
    clock: Clock = field(default_factory=Clock)
    settings: NodeSettings = field(default_factory=NodeSettings)
    link: FakeLink = field(init=False)
    printer: FakePrinter = field(init=False)
    fetcher: FakeFetcher = field(default_factory=FakeFetcher)
    node: Optional[PrinterNode] = None
    seq: int = 0

    def __post_init__(self) -> None:
        self.link = FakeLink()
        self.printer = FakePrinter(self.tmp / "printer")

    def start(self, **overrides: Any) -> PrinterNode:
        """Start (or restart) the node on the same journal."""
        self.link = FakeLink()
        self.node = PrinterNode(
            self.link,
            PRINTER_ID,
            self.printer,
            self.tmp / "journal.json",
            overrides.pop("fetcher", self.fetcher),
            overrides.pop("settings", self.settings),
            clock=self.clock,
            executor=InlineExecutor(),
            plate=overrides.pop("plate", None),
        )
        self.link.on_connect = self.node.on_connected
        self.node.start()
        return self.node

    def command(
        self, type: CommandType, job_id: int = 7, *, id: str = "", ttl: float = 60.0, **job: Any
    ) -> Command:
        self.seq += 1
        ref = None
        if type is CommandType.DISPATCH:
            content = job.pop("content", self.fetcher.content)
            ref = JobRef(
                job_id=job_id,
                url=job.pop("url", f"http://127.0.0.1:9/jobs/{job_id}/file"),
                sha256=job.pop("sha256", hashlib.sha256(content).hexdigest()),
                size=job.pop("size", len(content)),
                filename=job.pop("filename", "benchy.gcode"),
            )
        now = self.clock()
        return Command(id or f"c{self.seq}", type, now, now + ttl, job_id, ref)

    def send(self, command: Command) -> None:
        self.send_raw(encode_command(command))

    def send_raw(self, payload: bytes) -> None:
        self.link.deliver(topic(PRINTER_ID, Channel.CMD), payload)


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)
