"""``crowdfab-fleet serve``, ``enroll-code`` and ``member``: running the fleet and administering its lab."""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING

from ..config import DEFAULT_PORT
from ..errors import Unavailable
from ..models import Role
from .base import (
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    config_of,
    emit,
    open_fleet,
    port_number,
    positive_float,
    positive_int,
    proxy_count,
)

if TYPE_CHECKING:
    from .base import Subcommands


def cmd_serve(args: argparse.Namespace) -> int:
    from ..notify.worker import NotifyOptions
    from ..server import LinkOptions, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = LinkOptions(
        mqtt_port=args.mqtt_port,
        mqtt_url=args.mqtt_url or os.environ.get("CROWDFAB_MQTT_URL"),
        mqtt_dynsec=args.mqtt_dynsec or os.environ.get("CROWDFAB_MQTT_DYNSEC", "") in ("1", "yes", "true"),
        share_group=args.mqtt_share_group or os.environ.get("CROWDFAB_MQTT_SHARE_GROUP") or None,
        mqtt_public_host=args.mqtt_public_host,
        public_url=args.public_url,
    )
    if options.mqtt_dynsec and not options.mqtt_url:
        raise CliError("--mqtt-dynsec manages the logins of a shared broker: give its --mqtt-url", EXIT_USAGE)
    notify = NotifyOptions(
        photo_wait_s=args.notify_photo_wait,
        offline_after_s=args.notify_offline_after * 60.0,
        waiting_after_s=args.notify_waiting_after * 3600.0,
    )
    try:
        serve(config_of(args), options, notify, drain_s=args.drain_s)
    except Unavailable as exc:  # no broker to run or reach: the message says how to fix it
        raise CliError(exc.message, EXIT_UNREACHABLE) from exc
    return EXIT_OK


def cmd_enroll_code(args: argparse.Namespace) -> int:
    from ..api.serialize import iso

    fleet = open_fleet(args)
    try:
        code, expires_at = fleet.app.enrollment.create_enrollment_code(None, ttl_s=args.ttl * 3600.0)
    finally:
        fleet.close()
    emit(
        {"code": code, "expires_at": iso(expires_at)},
        args.json,
        lambda: (
            f"enrollment code (single use, valid until {iso(expires_at)}):\n{code}\n"
            "enter it in the printer's CrowdFab settings to add it to the fleet"
        ),
    )
    return EXIT_OK


def cmd_member_add(args: argparse.Namespace) -> int:
    fleet = open_fleet(args)
    try:
        approval = {"yes": True, "no": False, "lab": None}[args.requires_approval]
        member, token = fleet.app.members.add_member(args.name, Role(args.role), requires_approval=approval)
    finally:
        fleet.close()
    emit(
        {"id": member.id, "name": member.name, "role": member.role.value, "token": token},
        args.json,
        lambda: (
            f"{member.role.value} {member.name} added (id {member.id}).\n"
            f"API token (shown only this once; keep it secret):\n{token}"
        ),
    )
    return EXIT_OK


def cmd_member_list(args: argparse.Namespace) -> int:
    fleet = open_fleet(args)
    try:
        members = fleet.store.list_members()
    finally:
        fleet.close()
    rows = [{"id": m.id, "name": m.name, "role": m.role.value, "active": m.active} for m in members]
    emit(
        rows,
        args.json,
        lambda: "\n".join(
            [f"{'ID':>4}  {'NAME':<24} {'ROLE':<8} ACTIVE"]
            + [f"{r['id']:>4}  {r['name']:<24} {r['role']:<8} {'yes' if r['active'] else 'no'}" for r in rows]
        ),
    )
    return EXIT_OK


def add_admin_commands(sub: Subcommands, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``serve``, ``enroll-code`` and the ``member`` group; the group's parser, for its own help."""
    serve = sub.add_parser(
        "serve", parents=[common], help="run the fleet service (API)", description="Run the fleet service."
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})"
    )
    serve.add_argument(
        "--mqtt-port",
        type=port_number,
        default=18830,
        help="port of the broker the fleet runs for its printers (default 18830, clear of a system broker "
        "on 1883)",
    )
    serve.add_argument(
        "--mqtt-url",
        help="use this broker instead of running one, e.g. mqtt://fleet:secret@broker:1883 "
        "($CROWDFAB_MQTT_URL); its accounts and ACLs are then yours to manage",
    )
    serve.add_argument(
        "--mqtt-dynsec",
        action="store_true",
        help="with --mqtt-url: the broker is shared by several fleet processes and keeps printer logins in "
        "its dynamic security plugin, which the URL's login administers: the fleet creates and removes "
        "them as printers are enrolled and revoked ($CROWDFAB_MQTT_DYNSEC=1); see 'broker init'",
    )
    serve.add_argument(
        "--mqtt-share-group",
        metavar="GROUP",
        help="subscribe to printers through this MQTT 5 shared-subscription group, so the fleet processes "
        "on one broker split the messages (default: crowdfab with --mqtt-dynsec, none otherwise; "
        "$CROWDFAB_MQTT_SHARE_GROUP)",
    )
    serve.add_argument(
        "--mqtt-public-host",
        help="the broker host printers connect to (default: --host, or this machine's name for 0.0.0.0)",
    )
    serve.add_argument(
        "--public-url",
        help="the fleet's URL as printers reach it, for job downloads (default: http://<public host>:<port>)",
    )
    serve.add_argument(
        "--trusted-proxies",
        type=proxy_count,
        default=0,
        metavar="N",
        help="behind N reverse proxies that set X-Forwarded-For and X-Forwarded-Proto, take the client's "
        "address and scheme from them (sign-in limits count per client, cookies follow HTTPS); default 0: "
        "the headers are ignored, as anyone could send them",
    )
    serve.add_argument(
        "--metrics-token-file",
        metavar="PATH",
        help="serve Prometheus metrics at /metrics to scrapers that send the token in this file as "
        "'Authorization: Bearer' ($CROWDFAB_METRICS_TOKEN; at least 16 characters)",
    )
    serve.add_argument(
        "--metrics-allow",
        metavar="CIDRS",
        help="serve /metrics to these networks only, e.g. '10.0.0.0/8,::1' ($CROWDFAB_METRICS_ALLOW); "
        "with a token too, a scraper needs both; with neither, /metrics is off",
    )
    serve.add_argument(
        "--drain-s",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="on SIGTERM, keep serving this long while the health check answers 503, so a load balancer "
        "moves new requests to another fleet process first (default 0: stop at once)",
    )
    serve.add_argument(
        "--notify-offline-after",
        type=positive_float,
        default=15.0,
        metavar="MINUTES",
        help="tell the managers who chose it when a printer has been offline this long (default 15)",
    )
    serve.add_argument(
        "--notify-waiting-after",
        type=positive_float,
        default=24.0,
        metavar="HOURS",
        help="tell the managers who chose it when a job has waited this long (default 24)",
    )
    serve.add_argument(
        "--notify-photo-wait",
        type=positive_float,
        default=30.0,
        metavar="SECONDS",
        help="how long a 'print done' notification waits for the plate photo to go with it (default 30)",
    )
    serve.set_defaults(func=cmd_serve)

    enroll = sub.add_parser(
        "enroll-code",
        parents=[common],
        help="make a single-use code for enrolling a printer",
        description="Make a single-use code that enrolls one printer (its node asks for it).",
    )
    enroll.add_argument(
        "--ttl",
        type=positive_int,
        default=24,
        metavar="HOURS",
        help="hours the code stays valid (default 24)",
    )
    enroll.set_defaults(func=cmd_enroll_code)

    member = sub.add_parser("member", help="add and list members", description="Manage the lab's members.")
    member_sub = member.add_subparsers(dest="member_command", metavar="ACTION")
    add = member_sub.add_parser("add", parents=[common], help="add a member and print its API token once")
    add.add_argument("name", help="the member's sign-in name")
    add.add_argument(
        "--role", choices=[r.value for r in Role], default="member", help="member (default) or manager"
    )
    add.add_argument(
        "--requires-approval",
        choices=["yes", "no", "lab"],
        default="lab",
        help="whether this member's jobs wait for a manager's approval (default: the lab's setting)",
    )
    add.set_defaults(func=cmd_member_add)
    lst = member_sub.add_parser("list", parents=[common], help="list members")
    lst.set_defaults(func=cmd_member_list)

    return member
