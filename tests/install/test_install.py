"""Each install variant in a clean virtual environment, running its entry point as the README says.

- ``pip install crowdfab`` (a USB printer with the headless agent): no server packages, and
  ``crowdfab-agent print`` streams a file to the simulated firmware to the end.
- ``pip install crowdfab`` beside OctoPrint (a Pi running the plugin): every plugin module imports.
- ``pip install 'crowdfab[fleet]'``: ``crowdfab-fleet serve`` answers ``/api/v1/health``, and a member
  submits a file to it with ``crowdfab-fleet job submit``.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.gcode.generate import write_box
from tests.brokers import free_port, wait_until
from tests.processes import answers

from .conftest import ROOT, Built, Env, run

README = (ROOT / "README.md").read_text(encoding="utf-8")
#: What the fleet server needs and a printer's machine must not be made to install.
SERVER_ONLY = ("flask", "sqlalchemy", "waitress", "prometheus_client")
#: Modules the headless agent and the plugin's node side import at run time.
NODE_MODULES = (
    "fleet.agent",
    "fleet.agent_cli",
    "fleet.client",
    "fleet.http_protocol",
    "fleet.mqtt",
    "fleet.node",
    "fleet.node.enroll",
    "fleet.serial.simulator",
    "fleet.serial.streamer",
)


def package_files() -> set[str]:
    """The project's package files in the checkout (sources, templates, static files, translations)."""
    found = set()
    for top in ("fleet", "octoprint_crowdfab"):
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
                found.add(path.relative_to(ROOT).as_posix())
    return found


def stop(proc: subprocess.Popen[str], timeout: float = 15) -> None:
    """Ctrl-C, as a person stops it; killed if it does not stop in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
        raise


def test_the_sdist_and_the_wheel_carry_every_package_file(built: Built) -> None:
    with tarfile.open(built.sdist) as sdist:
        in_sdist = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    with zipfile.ZipFile(built.wheel) as wheel:
        in_wheel = set(wheel.namelist())
    expected = package_files()
    assert expected - in_sdist == set(), "MANIFEST.in leaves these out of the sdist"
    assert expected - in_wheel == set(), "the wheel built from the sdist lacks these"
    assert {"setup.py", "README.md", "MANIFEST.in", "pyproject.toml"} <= in_sdist
    assert not [name for name in in_wheel if name.startswith("tests/")], "tests are not installed"


def test_the_readme_gives_these_commands() -> None:
    """The commands the other tests run are the README's own (so the README stays true)."""
    assert "pip install crowdfab\n" in README
    assert "pip install 'crowdfab[fleet]'" in README
    assert re.search(r"crowdfab-agent print --port \S+ --baud 115200 \S+\.gcode", README)
    assert re.search(r"crowdfab-fleet member add ada --role manager --data-dir (\S+)", README)
    assert re.search(r"crowdfab-fleet serve --data-dir \S+ --host \S+ --port \d+\n", README)


@pytest.fixture
def simulator(base_env: Env) -> Iterator[str]:
    """``crowdfab-agent simulate`` from the base install; its device path."""
    proc = subprocess.Popen(
        [base_env.bin("crowdfab-agent"), "simulate", "--speedup", "inf"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        device = proc.stdout.readline().strip()  # the simulator's first line is its device
        assert device.startswith("/dev/"), (
            f"no device from the simulator: {proc.stderr.read() if proc.poll() else ''}"
        )
        yield device
    finally:
        stop(proc)


def test_the_base_install_has_no_server_packages(base_env: Env) -> None:
    assert [name for name in SERVER_ONLY if base_env.imports(name)] == []
    missing = [name for name in NODE_MODULES if not base_env.imports(name)]
    assert missing == [], "the base install cannot import what the agent and the node need"


def test_the_plugin_loads_in_octoprint_with_only_the_base_install(octoprint_env: Env) -> None:
    """Every module of the plugin imports beside OctoPrint, and none pulls in a server package."""
    script = (
        "import importlib, pkgutil, sys, octoprint_crowdfab as p\n"
        "for m in pkgutil.iter_modules(p.__path__): importlib.import_module(f'octoprint_crowdfab.{m.name}')\n"
        "print(sorted(n for n in ('sqlalchemy', 'waitress') if n in sys.modules))"
    )
    loaded = run([octoprint_env.bin("python"), "-c", script])
    assert loaded.stdout.strip() == "[]"


def test_the_base_install_prints_a_file_on_the_simulated_printer(
    base_env: Env, simulator: str, tmp_path: Path
) -> None:
    part = tmp_path / "part.gcode"
    write_box(part, width=10, depth=10, height=0.6)
    lines = sum(1 for line in part.read_text().splitlines() if line.split(";", 1)[0].strip())
    result = subprocess.run(
        [base_env.bin("crowdfab-agent"), "print", "--port", simulator, "--baud", "115200", str(part)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    done = re.search(r"part\.gcode: done, (\d+) lines", result.stderr)
    assert done and int(done.group(1)) >= lines, result.stderr


def test_the_fleet_install_serves_and_takes_a_submission(fleet_env: Env, tmp_path: Path) -> None:
    data_dir = tmp_path / "crowdfab"
    fleet = fleet_env.bin("crowdfab-fleet")
    added = run([fleet, "member", "add", "ada", "--role", "manager", "--data-dir", str(data_dir), "--json"])
    token = json.loads(added.stdout)["token"]
    port = free_port()
    proc = subprocess.Popen(
        [
            fleet,
            "serve",
            "--data-dir",
            str(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--mqtt-port",
            str(free_port()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def output() -> str:
        return proc.stdout.read() if proc.stdout else ""

    def up() -> bool:
        return answers(f"{url}/api/v1/health", proc, "crowdfab-fleet serve", output)

    try:
        wait_until(up, 60, "crowdfab-fleet serve to answer /api/v1/health")
        part = tmp_path / "part.gcode"
        write_box(part, width=10, depth=10, height=0.6)
        submitted = run(
            [fleet, "job", "submit", str(part), "--fleet", url, "--token", token, "--json"], timeout=120
        )
        jobs = json.loads(submitted.stdout)["jobs"]
        assert len(jobs) == 1 and jobs[0]["filename"] == "part.gcode"
    finally:
        stop(proc)
