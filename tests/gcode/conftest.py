"""Fixtures for the G-code tests: a text analyser. The real slicer files are the root conftest's
``sample_gcode``."""

from __future__ import annotations

import io
from typing import Any, Callable

import pytest

from fleet.gcode import Analysis, analyze_stream


def _analyze_text(text: str, **options: Any) -> Analysis:
    return analyze_stream(io.BytesIO(text.encode("utf-8")), **options)


@pytest.fixture
def analyze_text() -> Callable[..., Analysis]:
    """Analyse G-code given as text: ``analyze_text("G1 X1 E1", material="PLA")``."""
    return _analyze_text
