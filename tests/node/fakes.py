"""In-memory stand-ins for a node's link, printer and file source."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

from fleet.node import PrinterError, PrinterSnapshot, PrintOutcome
from fleet.protocol import (
    Ack,
    Channel,
    Event,
    JobRef,
    Status,
    decode_ack,
    decode_event,
    decode_status,
    parse_topic,
)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeLink:
    """Records what is published; ``deliver`` hands a message to the subscribed handler."""

    def __init__(self, on_connect: Optional[Callable[[], None]] = None) -> None:
        self.on_connect = on_connect
        self.connected = False
        self.published: list[tuple[str, bytes, bool]] = []
        self.handlers: dict[str, Callable[[str, bytes], None]] = {}

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None], qos: int = 1) -> None:
        self.handlers[topic_filter] = handler

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self.published.append((topic, payload, retain))

    def start(self) -> None:
        self.connect()

    def connect(self) -> None:
        self.connected = True
        if self.on_connect is not None:
            self.on_connect()

    def close(self, timeout: float = 5.0) -> None:
        self.connected = False

    def deliver(self, topic: str, payload: bytes) -> None:
        self.handlers[topic](topic, payload)

    def on(self, channel: Channel) -> list[tuple[bytes, bool]]:
        return [(p, r) for t, p, r in self.published if parse_topic(t)[1] is channel]

    def acks(self) -> list[Ack]:
        return [decode_ack(p) for p, _ in self.on(Channel.ACK)]

    def events(self) -> list[Event]:
        return [decode_event(p) for p, _ in self.on(Channel.EVENTS)]

    def statuses(self) -> list[Status]:
        return [decode_status(p) for p, _ in self.on(Channel.STATUS)]


class FakePrinter:
    """A printer that does what it is told at once; tests finish prints with ``finish``."""

    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.state = PrinterSnapshot(operational=True)
        self.started: list[Path] = []
        self.actions: list[str] = []
        self.results: dict[str, PrintOutcome] = {}
        self.fail_start = False

    def snapshot(self) -> PrinterSnapshot:
        return self.state

    def start(self, path: Path) -> None:
        if self.fail_start:
            raise PrinterError("printer said no")
        self.started.append(path)
        self.state = replace(
            self.state, printing=True, file_path=str(path), file_name=path.name, progress=0.0
        )

    def pause(self) -> None:
        self.actions.append("pause")
        self.state = replace(self.state, printing=False, paused=True)

    def resume(self) -> None:
        self.actions.append("resume")
        self.state = replace(self.state, printing=True, paused=False)

    def cancel(self) -> None:
        self.actions.append("cancel")
        self.state = replace(self.state, printing=False, paused=False)

    def store_file(self, job_id: int, filename: str, source: Path) -> Path:
        target = self.storage / "crowdfab" / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return Path("crowdfab") / filename

    def last_result(self, path: Path) -> Optional[PrintOutcome]:
        return self.results.get(str(path))

    def finish(self, outcome: PrintOutcome = PrintOutcome.DONE) -> str:
        path = self.state.file_path or ""
        self.results[path] = outcome
        self.state = replace(self.state, printing=False, paused=False, progress=None)
        return path


class FakeFetcher:
    """Serves job files from memory, checking nothing: the HTTP fetcher has its own tests."""

    def __init__(self, content: bytes = b"G28\n") -> None:
        self.content = content
        self.fetched: list[int] = []

    def fetch(self, job: JobRef, dest_dir: Path) -> Path:
        self.fetched.append(job.job_id)
        dest_dir.mkdir(parents=True, exist_ok=True)
        path = dest_dir / f"job-{job.job_id}.part"
        path.write_bytes(self.content)
        return path
