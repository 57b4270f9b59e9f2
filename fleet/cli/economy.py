"""``crowdfab-fleet prices``, ``group`` and ``ledger``: the lab's price list, membership groups and quotas,
and a month of the ledger as CSV, run on the fleet's data dir by a manager (``--manager NAME``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..economy.periods import PERIODS, Period
from ..errors import Forbidden, NotFound
from ..models import Member, Role
from .base import EXIT_OK, EXIT_USAGE, CliError, emit, open_fleet

if TYPE_CHECKING:
    from .base import Subcommands


def manager_named(fleet: Any, name: str) -> Member:
    member: Member = fleet.store.get_member_by_name(name)
    if member.role is not Role.MANAGER:
        raise Forbidden(f"{name} is not a manager of the lab: only managers change prices, groups and quotas")
    return member


def group_named(fleet: Any, name: str) -> Any:
    for group in fleet.store.list_groups():
        if group.name == name:
            return group
    raise NotFound(f"there is no membership group named {name!r}; add it with 'crowdfab-fleet group add'")


def cmd_prices_show(args: argparse.Namespace) -> int:
    fleet = open_fleet(args)
    try:
        prices, list_id = fleet.app.pricing.current()
        currency = fleet.app.lab.settings().currency
    finally:
        fleet.close()
    data = {"id": list_id, "currency": currency, **prices.to_dict()}
    emit(data, args.json, lambda: json.dumps(data, indent=2))
    return EXIT_OK


def cmd_prices_set(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read a JSON price list from {args.file}: {exc}", EXIT_USAGE) from exc
    fleet = open_fleet(args)
    try:
        prices, list_id = fleet.app.pricing.set_price_list(manager_named(fleet, args.manager), data)
    finally:
        fleet.close()
    emit({"id": list_id, **prices.to_dict()}, args.json, lambda: f"price list {list_id} is in force")
    return EXIT_OK


def cmd_group_add(args: argparse.Namespace) -> int:
    fleet = open_fleet(args)
    try:
        group = fleet.app.quotas.create_group(manager_named(fleet, args.manager), args.name, args.priority)
    finally:
        fleet.close()
    emit(
        {"id": group.id, "name": group.name, "priority": group.priority},
        args.json,
        lambda: f"group {group.name} added (id {group.id}, priority {group.priority})",
    )
    return EXIT_OK


def cmd_group_list(args: argparse.Namespace) -> int:
    fleet = open_fleet(args)
    try:
        groups = fleet.store.list_groups()
        memberships = fleet.store.memberships()  # the console reads the data dir, as ``member list`` does
        names = {m.id: m.name for m in fleet.store.list_members()}
    finally:
        fleet.close()
    rows = [
        {
            "id": g.id,
            "name": g.name,
            "priority": g.priority,
            "members": sorted(names[m] for m, gid in memberships.items() if gid == g.id and m in names),
        }
        for g in groups
    ]
    emit(
        rows,
        args.json,
        lambda: "\n".join(
            [f"{'ID':>4}  {'NAME':<20} {'PRIORITY':>8}  MEMBERS"]
            + [f"{r['id']:>4}  {r['name']:<20} {r['priority']:>8}  {', '.join(r['members'])}" for r in rows]
        ),
    )
    return EXIT_OK


def cmd_group_assign(args: argparse.Namespace) -> int:
    fleet = open_fleet(args)
    try:
        manager = manager_named(fleet, args.manager)
        member = fleet.store.get_member_by_name(args.member_name)
        group = None if args.group == "-" else group_named(fleet, args.group)
        fleet.app.quotas.set_member_group(manager, member.id, None if group is None else group.id)
    finally:
        fleet.close()
    where = "no group" if group is None else f"group {group.name}"
    emit(
        {"member": member.name, "group": None if group is None else group.name},
        args.json,
        lambda: f"{member.name} is in {where}",
    )
    return EXIT_OK


def cmd_group_quota(args: argparse.Namespace) -> int:
    data: dict[str, Any] = {"period": args.period}
    for key, value in (("printer_hours", args.hours), ("grams", args.grams), ("cost", args.cost)):
        if value is not None:
            data[key] = value
    if args.at_once is not None:
        data["jobs_at_once"] = args.at_once
    fleet = open_fleet(args)
    try:
        group = group_named(fleet, args.group)
        fleet.app.quotas.set_quota(manager_named(fleet, args.manager), data, group_id=group.id)
    finally:
        fleet.close()
    emit({"group": group.name, **data}, args.json, lambda: f"group {group.name}: quota a {args.period} set")
    return EXIT_OK


def cmd_ledger_export(args: argparse.Namespace) -> int:
    fleet = open_fleet(args)
    try:
        text = fleet.app.pricing.month_csv(manager_named(fleet, args.manager), args.month)
    finally:
        fleet.close()
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8", newline="")
    return EXIT_OK


def add_economy_commands(
    sub: Subcommands, common: argparse.ArgumentParser
) -> dict[str, argparse.ArgumentParser]:
    """The ``prices``, ``group`` and ``ledger`` groups; their parsers, for their own help."""
    acting = argparse.ArgumentParser(add_help=False)
    acting.add_argument("--manager", required=True, metavar="NAME", help="the manager who makes the change")

    prices = sub.add_parser(
        "prices", help="show or set the lab's price list", description="The lab's price list."
    )
    prices_sub = prices.add_subparsers(dest="prices_command", metavar="ACTION")
    show = prices_sub.add_parser("show", parents=[common], help="print the price list in force")
    show.set_defaults(func=cmd_prices_show)
    put = prices_sub.add_parser(
        "set", parents=[common, acting], help="replace the price list with a JSON file (see docs/economy.md)"
    )
    put.add_argument("file", help="the JSON price list, or - for standard input")
    put.set_defaults(func=cmd_prices_set)

    group = sub.add_parser(
        "group", help="membership groups and their quotas", description="Membership groups and quotas."
    )
    group_sub = group.add_subparsers(dest="group_command", metavar="ACTION")
    add = group_sub.add_parser("add", parents=[common, acting], help="add a membership group")
    add.add_argument("name")
    add.add_argument(
        "--priority", type=int, default=0, help="added to its members' jobs' priority (default 0)"
    )
    add.set_defaults(func=cmd_group_add)
    lst = group_sub.add_parser("list", parents=[common], help="list groups and their members")
    lst.set_defaults(func=cmd_group_list)
    assign = group_sub.add_parser(
        "assign", parents=[common, acting], help="put a member in a group (- for none)"
    )
    assign.add_argument("member_name", metavar="MEMBER")
    assign.add_argument("group", metavar="GROUP")
    assign.set_defaults(func=cmd_group_assign)
    quota = group_sub.add_parser(
        "quota", parents=[common, acting], help="set a group's limits for one period (each member's)"
    )
    quota.add_argument("group", metavar="GROUP")
    quota.add_argument("--period", required=True, choices=[p.value for p in Period], help=PERIODS)
    quota.add_argument("--hours", help="printer-hours, such as 10 or 2.5")
    quota.add_argument("--grams", help="grams of filament")
    quota.add_argument("--cost", help="in the lab's currency, such as 20.00")
    quota.add_argument("--at-once", type=int, help="jobs on printers at the same time")
    quota.set_defaults(func=cmd_group_quota)

    ledger = sub.add_parser("ledger", help="the lab's ledger", description="The lab's ledger of charges.")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", metavar="ACTION")
    export = ledger_sub.add_parser(
        "export", parents=[common, acting], help="write one month's charges as CSV (the lab's time zone)"
    )
    export.add_argument("--month", required=True, help="YYYY-MM")
    export.add_argument("-o", "--output", default="-", help="a file, or - for standard output (default)")
    export.set_defaults(func=cmd_ledger_export)
    return {"prices": prices, "group": group, "ledger": ledger}
