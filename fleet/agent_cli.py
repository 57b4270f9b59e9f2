"""``crowdfab-agent``: run a USB printer with no OctoPrint as a fleet node, print one file, or simulate one.

Exit codes a script can trust: 0 success; 1 the job failed or the fleet refused; 2 the command line is wrong;
3 the printer or the fleet could not be reached.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Optional

from .cli import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Progress,
    fraction,
    positive_float,
    positive_int,
)

if TYPE_CHECKING:
    from .agent import Agent
    from .serial.streamer import JobResult, StreamerConfig, StreamerSnapshot

DEFAULT_BAUD = 115200


def rx_buffer_bytes(text: str) -> int:
    """A receive buffer size in bytes, 16 to 65536 (a board's RX_BUFFER_SIZE, e.g. 128)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of bytes (e.g. 128)") from None
    if not 16 <= value <= 65536:
        raise argparse.ArgumentTypeError(f"{value} bytes: a receive buffer is 16 to 65536 bytes (e.g. 128)")
    return value


def streamer_config(rx_buffer: Optional[int], data_dir: Path) -> StreamerConfig:
    """The streamer's settings from the command line: a known buffer, or learn and remember it."""
    from .serial.stream_types import StreamerConfig
    from .serial.window_memory import FILE_NAME

    return StreamerConfig(rx_buffer_bytes=rx_buffer, window_memory=data_dir / FILE_NAME)


def default_agent_dir() -> Path:
    """``$CROWDFAB_AGENT_DIR``, else ``~/.crowdfab-agent``."""
    env = os.environ.get("CROWDFAB_AGENT_DIR")
    return Path(env) if env else Path.home() / ".crowdfab-agent"


# -- argument types --------------------------------------------------------------------------------


def volume_mm(text: str) -> tuple[float, float, float]:
    """``X,Y,Z`` in millimetres, e.g. ``250,210,220``."""
    parts = text.replace("x", ",").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not X,Y,Z in millimetres (e.g. 250,210,220)") from None
    if len(values) != 3 or not all(0 < v <= 5000 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} must be three sizes over 0 mm, e.g. 250,210,220")
    return values[0], values[1], values[2]


def stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM, so the main loop can close things in order."""
    stop = threading.Event()

    def handler(_signum: int, _frame: Optional[FrameType]) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def fail(message: str, code: int) -> int:
    print(f"crowdfab-agent: {message}", file=sys.stderr)
    return code


# -- commands -------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from .agent import Agent, AgentConfig, AgentError, Problem
    from .geometry import Box
    from .protocol import Capabilities

    volume = None
    if args.volume:
        x, y, z = args.volume
        volume = Box(0.0, 0.0, 0.0, x, y, z)
    config = AgentConfig(
        port=args.port,
        baud=args.baud,
        data_dir=Path(args.data_dir).expanduser(),
        fleet_url=args.fleet or "",
        enroll_code=args.enroll or "",
        name=args.name,
        capabilities=Capabilities(volume, args.nozzle, args.material),
        auto_accept=not args.ask_first,
        keepalive_s=args.keepalive,
        streamer=streamer_config(args.rx_buffer, Path(args.data_dir).expanduser()),
    )
    agent = Agent(config)
    stop = stop_on_signals()
    try:
        agent.start()
    except AgentError as exc:
        codes = {Problem.DEVICE: EXIT_UNREACHABLE, Problem.UNREACHABLE: EXIT_UNREACHABLE}
        return fail(str(exc), codes.get(exc.problem, EXIT_REFUSED))
    print(f"crowdfab-agent: {args.port} runs as printer {agent.printer_id}; Ctrl-C stops", file=sys.stderr)
    if args.ask_first:
        threading.Thread(target=ask_owner, args=(agent, stop), name="crowdfab-ask", daemon=True).start()
    agent.run(stop)
    return EXIT_OK


def ask_owner(agent: Agent, stop: threading.Event, poll_s: float = 0.5) -> None:
    """With ``--ask-first``: show each offered job and take y/n from the terminal."""
    asked: Optional[str] = None
    while not stop.wait(poll_s):
        node = agent.node
        offer = node.pending_offer() if node else None
        if node is None or offer is None or offer.command.id == asked or offer.command.job is None:
            continue
        asked = offer.command.id
        job = offer.command.job
        sys.stderr.write(f"job {job.job_id} ({job.filename}, {job.size} bytes) is offered: print it? [y/N] ")
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        (node.accept_offer if answer in ("y", "yes") else node.decline_offer)()


class BarListener:
    """Draws the streamer's byte progress on a :class:`~fleet.cli.Progress` bar."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar

    def on_snapshot(self, snapshot: StreamerSnapshot) -> None:
        self.bar.advance(max(0, snapshot.bytes_done - self.bar.done))

    def on_job_finished(self, result: JobResult) -> None:
        pass


def cmd_print(args: argparse.Namespace, poll_s: float = 0.2) -> int:
    from .serial.streamer import BadGcodeFile, JobOutcome, PrinterUnreachable, SerialStreamer, check_file

    path = Path(args.file)
    if not path.is_file():
        return fail(f"no such G-code file: {path}", EXIT_USAGE)
    try:
        check_file(path)  # before the port opens: nothing reaches the printer from a bad file
    except BadGcodeFile as exc:
        return fail(f"refusing {path}: {exc}", EXIT_USAGE)
    bar = Progress(path.stat().st_size, path.name, args.progress)
    stop = stop_on_signals()
    config = streamer_config(args.rx_buffer, default_agent_dir())
    listener = BarListener(bar) if bar.enabled else None
    streamer = SerialStreamer(args.port, args.baud, config=config, listener=listener)
    try:
        try:
            streamer.connect()
        except PrinterUnreachable as exc:
            return fail(exc.message, EXIT_UNREACHABLE)
        streamer.start_job(path)
        cancelled = False
        while (result := streamer.wait_job(poll_s)) is None:
            if stop.is_set() and not cancelled:
                cancelled = True
                streamer.cancel()  # Ctrl-C: the cancel G-code runs, then the job ends CANCELLED
    finally:
        streamer.close()
        bar.finish()
    if result.outcome is JobOutcome.DONE:
        print(f"{path.name}: done, {result.lines_sent} lines in {result.elapsed_s:.1f} s", file=sys.stderr)
        return EXIT_OK
    return fail(f"{path.name}: {result.outcome.value}: {result.message}", EXIT_REFUSED)


def cmd_simulate(args: argparse.Namespace) -> int:
    from .serial.simulator import SimulatedFirmware, SimulatorOptions

    options = SimulatorOptions(
        buffer_size=args.buffer_size,
        advanced_ok=args.advanced_ok,
        speedup=args.speedup,
        baud=args.baud,
        usb_latency_s=args.latency_ms / 1000.0,
        corrupt_rate=args.corrupt_rate,
        drop_ok_every=args.drop_ok_every,
        thermal_runaway_at_line=args.thermal_runaway_at_line,
        rx_buffer_bytes=args.sim_rx_buffer,
        dialect=args.dialect,
    )
    stop = stop_on_signals()
    firmware = SimulatedFirmware(options)
    device = firmware.start()
    try:
        print(device, flush=True)
        print(f"crowdfab-agent: simulated firmware on {device}; Ctrl-C stops", file=sys.stderr)
        stop.wait()
    finally:
        firmware.stop()
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    serial = argparse.ArgumentParser(add_help=False)
    serial.add_argument("--port", required=True, help="the printer's serial device, e.g. /dev/ttyUSB0")
    serial.add_argument(
        "--baud", type=positive_int, default=DEFAULT_BAUD, help=f"baud rate (default {DEFAULT_BAUD})"
    )
    env_rx = os.environ.get("CROWDFAB_AGENT_RX_BUFFER")
    serial.add_argument(
        "--rx-buffer",
        type=rx_buffer_bytes,
        default=rx_buffer_bytes(env_rx) if env_rx else None,
        metavar="BYTES",
        help="the board's serial receive buffer (Marlin's RX_BUFFER_SIZE), if you know it; default: "
        "$CROWDFAB_AGENT_RX_BUFFER, else learned from one line in flight upwards and remembered",
    )

    parser = argparse.ArgumentParser(
        prog="crowdfab-agent",
        description="Join a USB-attached printer (no OctoPrint) to a CrowdFab fleet.",
        epilog="Exit codes: 0 success, 1 job failed or refused, 2 usage error, 3 printer or fleet down.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the agent does")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        parents=[serial],
        help="join the fleet and print the jobs it sends",
        description="Join the fleet (enrolling once with a code) and print the jobs it dispatches. "
        "Ctrl-C stops cleanly: the fleet sees the printer go offline.",
    )
    run.add_argument("--fleet", help="the fleet's URL, e.g. http://fleet.lab:8080 (needed to enroll)")
    run.add_argument("--enroll", metavar="CODE", help="the enrollment code from a manager (first run only)")
    run.add_argument(
        "--data-dir",
        default=str(default_agent_dir()),
        help="where the agent keeps its credentials, journal and files "
        "(default: $CROWDFAB_AGENT_DIR or ~/.crowdfab-agent)",
    )
    run.add_argument("--name", default="USB printer", help="the printer's name in the fleet")
    run.add_argument("--volume", type=volume_mm, metavar="X,Y,Z", help="build volume in mm, e.g. 250,210,220")
    run.add_argument("--nozzle", type=positive_float, help="nozzle diameter in mm (e.g. 0.4)")
    run.add_argument("--material", help="the loaded material (e.g. PLA)")
    run.add_argument(
        "--ask-first", action="store_true", help="ask on this terminal before printing each dispatched job"
    )
    run.add_argument(
        "--keepalive",
        type=positive_int,
        default=30,
        metavar="SECONDS",
        help="MQTT keepalive: the fleet notices a vanished agent after 1.5 times this (default 30)",
    )
    run.set_defaults(func=cmd_run)

    prt = sub.add_parser(
        "print",
        parents=[serial],
        help="stream one G-code file to the printer",
        description="Stream one G-code file; exit 0 only when the firmware executed all of it.",
    )
    prt.add_argument("file", help="the G-code file")
    prt.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar on stderr (default: on a terminal)",
    )
    prt.set_defaults(func=cmd_print)

    sim = sub.add_parser(
        "simulate",
        help="run a simulated Marlin-like printer on a pseudo-terminal",
        description="Run a simulated printer; its device path is the first line on stdout. Ctrl-C stops.",
    )
    sim.add_argument("--buffer-size", type=positive_int, default=4, help="command buffer slots (default 4)")
    sim.add_argument("--advanced-ok", action="store_true", help="answer 'ok N.. P.. B..' like ADVANCED_OK")
    sim.add_argument(
        "--rx-buffer",
        dest="sim_rx_buffer",
        type=rx_buffer_bytes,
        default=128,
        metavar="BYTES",
        help="its serial receive buffer; bytes that do not fit while it is busy are lost (default 128)",
    )
    sim.add_argument(
        "--dialect",
        choices=["marlin2", "marlin1", "prusa", "rrf", "smoothie"],
        help="answer in this firmware family's words (default: the simulator's own Marlin 2)",
    )
    sim.add_argument(
        "--speedup",
        type=positive_float,
        default=1.0,
        help="run moves this many times faster ('inf': no time)",
    )
    sim.add_argument("--baud", type=positive_int, help="insist on this baud rate")
    sim.add_argument(
        "--latency-ms", type=float, default=0.0, help="USB latency added to each reply, in ms (default 0)"
    )
    sim.add_argument(
        "--corrupt-rate", type=fraction, default=0.0, help="share of lines received corrupt (0-1)"
    )
    sim.add_argument("--drop-ok-every", type=positive_int, metavar="N", help="lose every Nth 'ok'")
    sim.add_argument(
        "--thermal-runaway-at-line",
        type=positive_int,
        metavar="N",
        help="halt with thermal runaway at line N",
    )
    sim.set_defaults(func=cmd_simulate)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
