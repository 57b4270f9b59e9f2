"""G-code intake: refuse what is not G-code, read what the slicer says, measure the moves, scan for safety.

Pure code: bytes in, frozen dataclasses out.
"""

from __future__ import annotations

from .analysis import analyze_path, analyze_stream
from .results import Analysis, Finding, Severity, Slicer, Thumbnail
from .safety import DEFAULT_RULES, MaterialLimits, SafetyRules, refusal_message

__all__ = [
    "DEFAULT_RULES",
    "Analysis",
    "Finding",
    "MaterialLimits",
    "SafetyRules",
    "Severity",
    "Slicer",
    "Thumbnail",
    "analyze_path",
    "analyze_stream",
    "refusal_message",
]
