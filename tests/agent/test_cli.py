"""``crowdfab-agent`` as a script sees it: exit codes, output, and the simulated printer's device path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.gcode.generate import generate_box

AGENT = str(Path(sys.executable).parent / "crowdfab-agent")


def agent(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env} if env else None
    return subprocess.run([AGENT, *args], capture_output=True, text=True, timeout=timeout, env=full)


@pytest.fixture
def part(tmp_path: Path) -> Path:
    path = tmp_path / "part.gcode"
    path.write_text(generate_box(8, 8, 0.4, origin=(30.0, 30.0)))
    return path


def test_print_exits_0_when_the_whole_file_was_executed(simulator, part):
    firmware, device = simulator(speedup=float("inf"))
    result = agent("print", "--port", device, "--baud", "115200", str(part), "--progress")
    assert result.returncode == 0, result.stderr
    assert "done" in result.stderr and "%" in result.stderr  # the progress bar was drawn
    assert firmware.executed and not firmware.killed


def test_print_exits_1_with_the_firmwares_message_on_thermal_runaway(simulator, part):
    _, device = simulator(speedup=float("inf"), thermal_runaway_at_line=10)
    result = agent("print", "--port", device, str(part))
    assert result.returncode == 1
    assert "runaway" in result.stderr.lower()
    assert "%" not in result.stderr  # no bar when stderr is not a terminal


def test_print_learns_the_window_and_remembers_it_per_printer(simulator, tmp_path):
    big = tmp_path / "big.gcode"
    big.write_text(generate_box(60, 60, 10.0, origin=(30.0, 30.0), infill=True))
    _, device = simulator(speedup=float("inf"))
    env = {"CROWDFAB_AGENT_DIR": str(tmp_path / "agent")}
    result = agent("print", "--port", device, str(big), env=env)
    assert result.returncode == 0, result.stderr
    memory = json.loads((tmp_path / "agent" / "serial-window.json").read_text())
    assert list(memory) == [f"{device}|Marlin 2.1.2 (CrowdFab simulator)"]
    assert memory[f"{device}|Marlin 2.1.2 (CrowdFab simulator)"] >= 64


def test_print_takes_a_known_rx_buffer_and_refuses_bad_ones(simulator, part):
    _, device = simulator(speedup=float("inf"))
    assert agent("print", "--port", device, "--rx-buffer", "256", str(part)).returncode == 0
    bad = agent("print", "--port", device, "--rx-buffer", "8", str(part))
    assert bad.returncode == 2 and "16 to 65536" in bad.stderr


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"G28\nG1 X1\x00\x01\x02 Y2\nG1 X3\n", "binary"), (b"G28\nM117 " + b"x" * 1_000_000 + b"\n", "bytes")],
    ids=["binary-blob", "1MB-line"],
)
def test_print_refuses_a_bad_file_before_the_first_byte(simulator, tmp_path, content, words):
    firmware, device = simulator(speedup=float("inf"))
    path = tmp_path / "bad.gcode"
    path.write_bytes(content)
    result = agent("print", "--port", device, str(path))
    assert result.returncode == 2
    assert "line 2" in result.stderr and words in result.stderr
    assert firmware.executed == []  # the port was never opened: nothing reached the printer


def test_print_exits_3_when_the_port_is_missing(tmp_path, part):
    result = agent("print", "--port", str(tmp_path / "ttyUSB7"), str(part))
    assert result.returncode == 3
    assert "ttyUSB7" in result.stderr


def test_usage_errors_exit_2(part):
    assert agent().returncode == 2
    assert agent("print", str(part)).returncode == 2  # no --port
    assert agent("run", "--port", "/dev/null", "--volume", "1,2").returncode == 2
    assert agent("simulate", "--speedup", "-1").returncode == 2


def test_run_without_credentials_or_code_exits_nonzero_and_says_what_to_do(simulator, tmp_path):
    _, device = simulator(speedup=float("inf"))
    result = agent("run", "--port", device, "--data-dir", str(tmp_path / "agent"))
    assert result.returncode == 1
    assert "enrollment code" in result.stderr


def test_run_exits_3_when_the_fleet_is_unreachable(simulator, tmp_path):
    from tests.brokers import free_port

    _, device = simulator(speedup=float("inf"))
    url = f"http://127.0.0.1:{free_port()}"
    result = agent(
        "run", "--port", device, "--fleet", url, "--enroll", "ABCD-EFGH-JKLM", "--data-dir", str(tmp_path)
    )
    assert result.returncode == 3, result.stderr
    assert "could not reach the fleet" in result.stderr


def test_simulate_prints_a_device_path_first_and_stops_on_ctrl_c():
    process = subprocess.Popen([AGENT, "simulate", "--speedup", "10"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        device = process.stdout.readline().strip()
        assert device.startswith("/dev/") and os.path.exists(device)
        process.send_signal(signal.SIGINT)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
