"""``crowdfab-fleet broker init``: the dynamic security file of a Mosquitto shared by fleet processes."""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from .base import EXIT_OK, EXIT_USAGE, CliError, emit, open_fleet, port_number

if TYPE_CHECKING:
    from .base import Subcommands

DEFAULT_FLEET_USER = "crowdfab_fleet"


def cmd_broker_init(args: argparse.Namespace) -> int:
    from ..broker import hash_password
    from ..dynsec import find_plugin, initial_config, mosquitto_conf_lines

    path = Path(args.dynsec_file).expanduser()
    if path.exists() and not args.force:
        raise CliError(
            f"{path} exists: the broker keeps its logins there. Give --force to replace it (every login "
            "it holds that the fleet did not write is lost)",
            EXIT_USAGE,
        )
    fleet = open_fleet(args)
    try:
        printers = [(c.printer_id, c.mqtt_password_hash) for c in fleet.store.active_credentials()]
    finally:
        fleet.close()
    password = secrets.token_urlsafe(24)
    text = initial_config(args.fleet_user, hash_password(password), printers)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)
    plugin = find_plugin() or "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
    url = f"mqtt://{quote(args.fleet_user, safe='')}:{quote(password, safe='')}@{args.host}:{args.port}"
    conf = mosquitto_conf_lines(plugin, str(path.resolve()), args.port)
    emit(
        {"dynsec_file": str(path), "printers": len(printers), "mqtt_url": url, "mosquitto_conf": conf},
        args.json,
        lambda: (
            f"wrote {path}: the fleet's login {args.fleet_user!r} and {len(printers)} enrolled printer(s).\n"
            "Let the broker's user own it (Debian: sudo chown mosquitto: FILE); add to mosquitto.conf:\n\n"
            f"{conf}\n"
            "Then start every fleet process with (the password is shown only this once):\n"
            f"  crowdfab-fleet serve --mqtt-dynsec --mqtt-url '{url}'\n"
        ),
    )
    return EXIT_OK


def add_broker_commands(sub: Subcommands, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``broker`` group; its parser, for its own help."""
    broker = sub.add_parser(
        "broker",
        help="set up a Mosquitto shared by several fleet processes",
        description="Set up a Mosquitto that several fleet processes share (dynamic security plugin).",
    )
    broker_sub = broker.add_subparsers(dest="broker_command", metavar="ACTION")
    init = broker_sub.add_parser(
        "init",
        parents=[common],
        help="write a dynamic security file: the fleet's login and every enrolled printer's",
        description="Write the dynamic security plugin's file for a new shared broker: everything denied "
        "but what the fleet's roles and each printer's own role allow; the fleet's login (printed once) "
        "and the login of every printer enrolled in this fleet's database, so they keep connecting.",
    )
    init.add_argument("dynsec_file", help="the file to write, e.g. /var/lib/mosquitto/dynamic-security.json")
    init.add_argument(
        "--fleet-user",
        default=DEFAULT_FLEET_USER,
        help=f"the fleet processes' broker username (default {DEFAULT_FLEET_USER}; no possible printer id)",
    )
    init.add_argument("--host", default="127.0.0.1", help="the broker's host, for the printed URL")
    init.add_argument("--port", type=port_number, default=1883, help="the broker's port (default 1883)")
    init.add_argument("--force", action="store_true", help="replace an existing file")
    init.set_defaults(func=cmd_broker_init)
    return broker
