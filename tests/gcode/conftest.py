"""Fixtures for the G-code tests: the real slicer files beside the checkout, and a text analyser."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from fleet.gcode import Analysis, analyze_stream


def shared_gcode_dir() -> Path:
    """``../shared/gcode`` beside the checkout, or ``$CROWDFAB_SHARED_GCODE``."""
    override = os.environ.get("CROWDFAB_SHARED_GCODE")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "shared" / "gcode"


@pytest.fixture(scope="session")
def samples() -> Path:
    folder = shared_gcode_dir()
    if not (folder / "benchy_prusaslicer.gcode").is_file():
        pytest.skip(f"the real slicer files are not here: {folder} (set CROWDFAB_SHARED_GCODE)")
    return folder


def _analyze_text(text: str, **options: Any) -> Analysis:
    return analyze_stream(io.BytesIO(text.encode("utf-8")), **options)


@pytest.fixture
def analyze_text() -> Callable[..., Analysis]:
    """Analyse G-code given as text: ``analyze_text("G1 X1 E1", material="PLA")``."""
    return _analyze_text
