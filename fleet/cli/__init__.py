"""``crowdfab-fleet``: run the fleet and administer it from a terminal.

Exit codes: 0 success; 1 the fleet refused the request (invalid file, not allowed, not found);
2 the command line is wrong; 3 the fleet or its database could not be reached.

One module a command group: :mod:`.admin` (serve, enroll-code, member), :mod:`.jobs` (analyze, job),
:mod:`.spools` (spool), :mod:`.broker` (broker init);
:mod:`.base` holds what they share.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from .. import __version__
from ..errors import FleetError
from .admin import add_admin_commands
from .base import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    Progress,
    config_of,
    fraction,
    positive_float,
    positive_int,
    shared_options,
)
from .broker import add_broker_commands
from .economy import add_economy_commands
from .jobs import add_job_commands
from .spools import add_spool_commands

#: ``crowdfab-agent`` (fleet/agent_cli.py) shares the exit codes, the progress bar and the argument types.
__all__ = [
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "Progress",
    "build_parser",
    "config_of",
    "fraction",
    "main",
    "positive_float",
    "positive_int",
]


def build_parser() -> argparse.ArgumentParser:
    common, client = shared_options()
    parser = argparse.ArgumentParser(
        prog="crowdfab-fleet",
        description="The CrowdFab fleet: a fair community queue for a lab's 3D printers.",
        epilog="Exit codes: 0 success, 1 refused by the fleet, 2 usage error, 3 fleet or database down.",
    )
    parser.add_argument("--version", action="version", version=f"crowdfab-fleet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    member = add_admin_commands(sub, common)
    job = add_job_commands(sub, common, client)
    economy = add_economy_commands(sub, common)
    spool = add_spool_commands(sub, common, client)
    broker = add_broker_commands(sub, common)
    parser.groups = {  # type: ignore[attr-defined]
        "member": member,
        "job": job,
        **economy,
        "spool": spool,
        "broker": broker,
    }
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        # A command group without its action: show that group's help.
        groups: dict[str, argparse.ArgumentParser] = parser.groups  # type: ignore[attr-defined]
        groups.get(args.command or "", parser).print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"crowdfab-fleet: {exc}", file=sys.stderr)
        return exc.code
    except FleetError as exc:
        print(f"crowdfab-fleet: {exc.message}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
