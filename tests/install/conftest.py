"""Installs as a user makes them: the project built once into an sdist and a wheel (the wheel built from
the sdist, so a file MANIFEST.in forgets is missing from both), then installed into clean virtual
environments (no system site packages) with pip, as the README says."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: What the copy of the checkout leaves out: local environments, caches and build output.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "data",
    "demo-data",
)


#: The OctoPrint the plugin is installed beside (the Makefile's range).
OCTOPRINT = "octoprint>=1.10,<2"


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path


def run(args: list[str], timeout: float = 600, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output when it does not exit 0."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sdist (from a copy of the checkout, so the checkout is left alone) and the wheel built from it."""
    work = tmp_path_factory.mktemp("build")
    source = work / "crowdfab"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    dist = work / "dist"
    run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(dist)], cwd=source)
    (sdist,) = dist.glob("crowdfab-*.tar.gz")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(dist), str(sdist)])
    (wheel,) = dist.glob("crowdfab-*.whl")
    return Built(sdist, wheel)


@dataclass(frozen=True)
class Env:
    """A clean virtual environment with one variant of the project installed."""

    path: Path

    def bin(self, name: str) -> str:
        return str(self.path / "bin" / name)

    def imports(self, module: str) -> bool:
        check = subprocess.run(
            [self.bin("python"), "-c", f"import {module}"], capture_output=True, timeout=60
        )
        return check.returncode == 0


def make_env(where: Path, *requirements: str) -> Env:
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(where)
    env = Env(where)
    run([env.bin("python"), "-m", "pip", "install", "-q", *requirements])
    return env


@pytest.fixture(scope="session")
def base_env(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Env:
    """``pip install crowdfab``: what a Pi running the plugin or the headless agent gets."""
    return make_env(tmp_path_factory.mktemp("venv") / "base", str(built.wheel))


@pytest.fixture(scope="session")
def octoprint_env(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Env:
    """OctoPrint's environment with ``pip install crowdfab`` in it: a Pi running the plugin."""
    where = tmp_path_factory.mktemp("venv") / "octoprint"
    return make_env(where, str(built.wheel), OCTOPRINT)


@pytest.fixture(scope="session")
def fleet_env(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Env:
    """``pip install 'crowdfab[fleet]'``: the fleet server's machine."""
    return make_env(tmp_path_factory.mktemp("venv") / "fleet", f"{built.wheel}[fleet]")
