"""How close the streamer gets to the serial line's own limit, beside Printrun's printcore and ping-pong.

For each receive buffer (32, 64, 128 and 1,024 bytes) and baud rate, side by side: the buffer given
(``--rx-buffer``), reported by ADVANCED_OK, and unknown (learned: the second run of the same printer,
starting from what the first one remembered), against printcore and a one-line ping-pong host.

One small-segment file (thousands of 0.1-0.3 mm G1 moves, from our own generator) goes to the
simulated firmware at 115200 and 250000 baud with 1 ms of USB latency and moves that take no time,
so the line is the only bottleneck. The limit is the file's framed bytes (``N.. cmd*cs\\n``) at 10
bits a byte; replies travel the other way on a full-duplex UART and do not count against it.

OctoPrint's own serial host runs too (``--no-octoprint`` leaves it out): a real OctoPrint server,
headless, its serial port set to the simulator's pty, printing the file uploaded through its REST API.

Needs Printrun's printcore: ``.venv/bin/pip install --no-deps printrun`` (it needs only pyserial).
Run: ``.venv/bin/python bench/serial_stream.py [--lines 2000]``.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.tables import print_header  # noqa: E402
from fleet.serial.lineproto import frame  # noqa: E402
from fleet.serial.simulator import SimulatedFirmware, SimulatorOptions  # noqa: E402
from fleet.serial.streamer import HOUSEKEEPING, JobOutcome, SerialStreamer, StreamerConfig  # noqa: E402

BAUDS = (115200, 250000)
BUFFERS = (32, 64, 128, 1024)
USB_LATENCY_S = 0.001
CONFIG = StreamerConfig(ok_timeout_s=2.0, connect_timeout_s=10.0)


def small_segments(count: int, seed: int = 1) -> list[str]:
    """``count`` extruding G1 moves of 0.1-0.3 mm along a wandering path, after a short preamble."""
    rng = random.Random(seed)
    lines = ["G90", "M83", "G1 X100.000 Y100.000 F1800"]
    x, y, heading = 100.0, 100.0, 0.0
    for _ in range(count):
        heading += rng.uniform(-0.4, 0.4)
        step = rng.uniform(0.1, 0.3)
        x, y = x + step * math.cos(heading), y + step * math.sin(heading)
        lines.append(f"G1 X{x:.3f} Y{y:.3f} E{step * 0.0332:.5f}")
    return lines


@dataclass(frozen=True)
class Run:
    host: str
    baud: int
    seconds: Optional[float]
    exact: bool
    note: str = ""


def _executed_file(device: SimulatedFirmware) -> list[str]:
    return [command for command in device.executed if command.split(" ", 1)[0] not in HOUSEKEEPING]


def _device(baud: int, advanced_ok: bool = False, rx: int = 128) -> tuple[SimulatedFirmware, str]:
    options = SimulatorOptions(
        baud=baud,
        usb_latency_s=USB_LATENCY_S,
        speedup=math.inf,
        advanced_ok=advanced_ok,
        buffer_size=4,
        rx_buffer_bytes=rx,
    )
    device = SimulatedFirmware(options)
    return device, device.start()


def run_streamer(name: str, path: Path, lines: list[str], baud: int, rx: int = 128, **kw: object) -> Run:
    advanced_ok = bool(kw.pop("advanced_ok", False))
    warm = bool(kw.pop("warm", False))
    if warm:  # learn once on this "printer"; the measured run starts from what it remembered
        run_streamer(name, path, lines[: len(lines) // 2], baud, rx, advanced_ok=advanced_ok, **kw)
    device, port = _device(baud, advanced_ok, rx)
    try:
        host = SerialStreamer(port, baud, config=replace(CONFIG, **kw))  # type: ignore[arg-type]
        host.connect()
        try:
            started = time.perf_counter()
            host.start_job(path)
            result = host.wait_job(timeout=600)
            device.wait_executed(len(lines), timeout=10)
            seconds = time.perf_counter() - started
        finally:
            host.close()
        ok = result is not None and result.outcome is JobOutcome.DONE
        note = "" if ok else f"{result}"
        return Run(name, baud, seconds if ok else None, _executed_file(device) == lines, note)
    finally:
        device.stop()


def run_printcore(path: Path, lines: list[str], baud: int, rx: int = 128) -> Run:
    try:
        from printrun.gcoder import LightGCode
        from printrun.printcore import printcore
    except ImportError:
        return Run("printcore", baud, None, False, "not installed: pip install --no-deps printrun")
    device, port = _device(baud, rx=rx)
    try:
        core = printcore(port, baud)
        try:
            deadline = time.monotonic() + 10
            while not core.online and time.monotonic() < deadline:
                time.sleep(0.01)
            if not core.online:
                return Run("printcore", baud, None, False, "did not come online")
            started = time.perf_counter()
            core.startprint(LightGCode(lines))
            deadline = time.monotonic() + 300
            while core.printing:  # printcore offers no completion event: poll its flag
                if time.monotonic() > deadline:  # it has no recovery for a lost ok: it can wait for ever
                    return Run("printcore", baud, None, False, "stalled (no progress for 300 s)")
                time.sleep(0.001)
            device.wait_executed(len(lines), timeout=10)
            seconds = time.perf_counter() - started
        finally:
            core.disconnect()
        return Run("printcore", baud, seconds, _executed_file(device) == lines)
    finally:
        device.stop()


class OctoPrintHost:
    """A real OctoPrint serving headless (as tests/octoprint_server.py starts one), its serial port on our
    simulator's pty; each run connects it to a fresh device, uploads the file and prints it over REST.

    OctoPrint keeps one line in flight (no window), so it is timed from the job's start to the last
    command executed by the device; its upload is not counted.
    """

    def __init__(self, first_port: str, baud: int) -> None:
        from tests.octoprint_server import OctoPrintServer

        class OnOurPty(OctoPrintServer):
            def _write_config(self) -> None:
                super()._write_config()
                config_path = self.basedir / "config.yaml"
                config = yaml.safe_load(config_path.read_text())
                config["serial"] = {
                    "autoconnect": True,
                    "port": first_port,
                    "baudrate": baud,
                    "additionalPorts": ["/dev/pts/*"],
                }
                config_path.write_text(yaml.safe_dump(config))

        self.server = OnOurPty(start_timeout=120.0).start()

    def close(self) -> None:
        self.server.stop()

    def _api(self, method: str, path: str, **kw: Any) -> requests.Response:
        response = self.server.admin.request(method, f"{self.server.url}{path}", timeout=30, **kw)
        response.raise_for_status()
        return response

    def _state(self) -> str:
        return str(self._api("GET", "/api/connection").json()["current"]["state"])

    def run(self, device: SimulatedFirmware, port: str, path: Path, lines: list[str], baud: int) -> Run:
        from tests.octoprint_server import wait_for

        current = self._api("GET", "/api/connection").json()["current"]
        if current["port"] != port or current["state"] != "Operational":
            self._api("POST", "/api/connection", json={"command": "disconnect"})
            connect = {"command": "connect", "port": port, "baudrate": baud}
            self._api("POST", "/api/connection", json=connect)
        wait_for(lambda: self._state() == "Operational", 60, "OctoPrint to be operational on " + port)
        with path.open("rb") as stream:
            self._api(
                "POST", "/api/files/local", files={"file": (path.name, stream)}, data={"select": "true"}
            )
        before = len(device.executed)
        started = time.perf_counter()
        self._api("POST", "/api/job", json={"command": "start"})
        if not device.wait_executed(before + len(lines), timeout=600):
            return Run("OctoPrint", baud, None, False, f"stalled; OctoPrint is {self._state()}")
        seconds = time.perf_counter() - started
        wait_for(lambda: self._state() == "Operational", 30, "OctoPrint to finish the job")
        done = [c for c in device.executed[before:] if c.split(" ", 1)[0] not in HOUSEKEEPING]
        extra = done[len(lines) :]  # OctoPrint's own end of a job: M400 (and M114) for its position
        exact = done[: len(lines)] == lines and set(extra) <= {"M400", "M114"}
        return Run("OctoPrint", baud, seconds, exact)


def run_octoprint(octoprint: list[OctoPrintHost], path: Path, lines: list[str], baud: int, rx: int) -> Run:
    """OctoPrint's own serial host on the same simulated device (started on the first call)."""
    device, port = _device(baud, rx=rx)
    try:
        if not octoprint:
            octoprint.append(OctoPrintHost(port, baud))
        return octoprint[0].run(device, port, path, lines, baud)
    except Exception as exc:  # a bench row, not a crash: say why OctoPrint has no figure
        return Run("OctoPrint", baud, None, False, f"{type(exc).__name__}: {exc}")
    finally:
        device.stop()


def line_limit(lines: list[str], baud: int) -> float:
    """Seconds the file's framed bytes take on the wire at ``baud`` (10 bits a byte)."""
    size = sum(len(frame(number, command)) for number, command in enumerate(lines, start=4))
    return size * 10 / baud


def ping_pong_seconds(options: SimulatorOptions, lines: int, length: int) -> float:
    """Seconds a plain ping-pong host (its own process) takes for ``lines`` lines against a fresh device."""
    import json
    import subprocess

    device = SimulatedFirmware(options)
    port = device.start()
    try:
        host = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.serial.sim_host",
                port,
                "--lines",
                str(lines),
                "--length",
                str(length),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    finally:
        device.stop()
    return float(json.loads(host.stdout)["seconds"])


def check_simulator_timing(baud: int, lines: int = 300, length: int = 40) -> float:
    """The emulated line's share of a plain ping-pong host's time, over what theory says it should be.

    Ping-pong's time on the line is fully predictable: each line's bytes, the ``ok`` back, and the
    USB latency. The host's own cost per line is measured against an unpaced device and taken off.
    The figures below are trusted only when this is close to 1.
    """
    theory = lines * ((length + len(b"ok\n")) * 10 / baud + USB_LATENCY_S)
    paced = ping_pong_seconds(
        SimulatorOptions(speedup=math.inf, baud=baud, usb_latency_s=USB_LATENCY_S), lines, length
    )
    host_cost = ping_pong_seconds(SimulatorOptions(speedup=math.inf), lines, length)
    return (paced - host_cost) / theory


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=1500, help="number of small segments (default 1500)")
    parser.add_argument("--buffers", default=",".join(map(str, BUFFERS)), help="receive buffers to try")
    parser.add_argument(
        "--no-octoprint",
        action="store_true",
        help="leave out OctoPrint's own serial host (it starts a server)",
    )
    args = parser.parse_args(argv)
    octoprint: list[OctoPrintHost] = []
    try:
        return compare(args, octoprint)
    finally:
        for host in octoprint:
            host.close()


def compare(args: argparse.Namespace, octoprint: list[OctoPrintHost]) -> int:
    """Every host on every baud rate and buffer; 1 if a streamer run failed or was not exact."""
    lines = small_segments(args.lines)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "segments.gcode"
        path.write_text("\n".join(lines) + "\n", encoding="ascii")
        size = sum(len(frame(n, c)) for n, c in enumerate(lines, start=4))
        print(
            f"{len(lines)} lines, {size} bytes framed; {USB_LATENCY_S * 1000:g} ms USB latency, moves instant"
        )
        memory = Path(folder) / "window.json"
        hosts: list[Callable[[int, int], Run]] = [
            lambda b, rx: run_streamer("streamer, given", path, lines, b, rx, rx_buffer_bytes=rx),
            lambda b, rx: run_streamer("streamer, ADVANCED_OK", path, lines, b, rx, advanced_ok=True),
            lambda b, rx: run_streamer(
                "streamer, learned",
                path,
                lines,
                b,
                rx,
                warm=True,
                window_memory=memory.with_suffix(f".{b}.{rx}"),
            ),
            lambda b, rx: run_printcore(path, lines, b, rx),
            *([] if args.no_octoprint else [lambda b, rx: run_octoprint(octoprint, path, lines, b, rx)]),
            lambda b, rx: run_streamer("ping-pong (streamer)", path, lines, b, rx, max_inflight=1),
        ]
        buffers = [int(size) for size in args.buffers.split(",")]
        for baud in BAUDS:
            ratio = check_simulator_timing(baud)
            # Within 10%: the simulator may add a little per-reply scheduling delay, never speed.
            verdict = "ok" if 0.97 <= ratio <= 1.10 else "OFF: do not trust the figures below"
            print(f"simulator timing at {baud}: the line takes {ratio:.3f}x its theoretical time ({verdict})")
        header = (
            f"{'host':<24}{'rx':>6}{'baud':>8}{'seconds':>10}{'lines/s':>9}"
            f"{'% of limit':>12}{'vs printcore':>14}  exact"
        )
        print_header(header)
        failures = 0
        for baud in BAUDS:
            limit = line_limit(lines, baud)
            print(
                f"{'line limit':<24}{'':>6}{baud:>8}{limit:>10.2f}{len(lines) / limit:>9.0f}"
                f"{100.0:>11.1f}%{'':>14}  -"
            )
            for rx in buffers:
                runs = []
                for run in hosts:
                    runs.append(run(baud, rx))
                    print(f"  ... {runs[-1].host} rx {rx} at {baud}: done", file=sys.stderr, flush=True)
                core = next((r.seconds for r in runs if r.host == "printcore"), None)
                for r in runs:
                    if r.seconds is None:
                        print(
                            f"{r.host:<24}{rx:>6}{baud:>8}{'-':>10}{'-':>9}{'-':>12}{'-':>14}  no  ({r.note})"
                        )
                        failures += r.host.startswith("streamer")
                        continue
                    share = 100.0 * limit / r.seconds
                    ratio = f"{core / r.seconds:.2f}x" if core else "-"
                    exact = "yes" if r.exact else "NO"
                    rate = len(lines) / r.seconds
                    print(
                        f"{r.host:<24}{rx:>6}{baud:>8}{r.seconds:>10.2f}{rate:>9.0f}"
                        f"{share:>11.1f}%{ratio:>14}  {exact}"
                    )
                    failures += not r.exact
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
