"""The headless printer agent: a USB printer with no OctoPrint, joined to the fleet as a node.

:class:`SerialPrinter` is the node's printer over the serial streamer; :class:`Agent` enrolls, keeps the
credentials and runs the node.
"""

from __future__ import annotations

from .agent import Agent, AgentConfig, AgentError, Problem, load_credentials, save_credentials
from .printer import PrintEvents, SerialPrinter
from .results import PrintResult, ResultBook

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentError",
    "PrintEvents",
    "PrintResult",
    "Problem",
    "ResultBook",
    "SerialPrinter",
    "load_credentials",
    "save_credentials",
]
