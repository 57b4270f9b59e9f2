"""``crowdfab-fleet spool``: the lab's spools, on the data dir directly (``--member``, a manager to change
anything) or through a running fleet (``--fleet`` and a manager's ``--token``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Optional

from ..http_protocol import SPOOLS, spool_path
from .base import EXIT_OK, CliError, ask, emit, local_member, open_fleet, positive_int, remote

if TYPE_CHECKING:
    from .base import Subcommands


def spool_line(spool: dict[str, Any]) -> str:
    where = f"on {spool['printer_id']}" if spool.get("printer_id") else f"shelf {spool.get('shelf') or '-'}"
    colour = f"{spool['colour_name']} ({spool['colour_hex']})"
    return (
        f"{spool['id']:>4}  {spool['material']:<8} {colour:<24} {spool['remaining_grams']:>8.1f} g "
        f"of {spool['net_grams']:g}  {where}"
    )


def _spools_text(spools: list[dict[str, Any]]) -> str:
    head = f"{'ID':>4}  {'MATERIAL':<8} {'COLOUR':<24} {'LEFT':>10}        WHERE"
    return "\n".join([head] + [spool_line(s) for s in spools])


def _run(args: argparse.Namespace, method: str, path: str, local: Any, **kwargs: Any) -> Any:
    """Call the running fleet (``method path``), or ``local(fleet, member)`` on the data dir."""
    client = remote(args)
    if client:
        return ask(client, method, path, **kwargs)
    from ..api.shapes.spools import Spool

    fleet = open_fleet(args)
    try:
        found = local(fleet, local_member(fleet, args.member))
        if isinstance(found, list):
            return [Spool.of(s).to_json() for s in found]
        return Spool.of(found).to_json()
    finally:
        fleet.close()


def cmd_list(args: argparse.Namespace) -> int:
    where = {"shelf": True, "loaded": False}.get(args.where or "")
    client = remote(args)
    if client:
        spools, cursor = [], None
        while True:
            asked: dict[str, str] = {"cursor": cursor} if cursor else {}
            if args.where:
                asked["where"] = args.where
            page = ask(client, "get", SPOOLS, params=asked)
            spools += page.get("spools", [])
            cursor = page.get("next_cursor")
            if not cursor:
                break
    else:

        def every(fleet: Any, member: Any) -> list[Any]:
            found, after = [], None
            while True:
                page = fleet.app.spools.spool_page(after=after, limit=500, on_shelf=where)
                found += page.items
                after = page.next_after
                if after is None:
                    return found

        spools = _run(args, "get", SPOOLS, every)
    emit(spools, args.json, lambda: _spools_text(spools))
    return EXIT_OK


def _new_values(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {
        "material": args.material,
        "colour_name": args.colour,
        "colour_hex": args.hex,
        "diameter_mm": args.diameter,
        "vendor": args.vendor,
        "net_grams": args.grams,
        "price_per_kg": args.price_per_kg,
        "shelf": args.shelf,
    }
    if args.remaining is not None:
        values["remaining_grams"] = args.remaining
    return values


def cmd_add(args: argparse.Namespace) -> int:
    values = _new_values(args)
    spool = _run(
        args, "post", SPOOLS, lambda fleet, m: fleet.app.spools.add_spool(m, values), json=values, expect=201
    )
    emit(spool, args.json, lambda: f"added spool {spool['id']}: {spool_line(spool)}")
    return EXIT_OK


def cmd_set(args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {}
    for option, field in (
        ("remaining", "remaining_grams"),
        ("shelf", "shelf"),
        ("price_per_kg", "price_per_kg"),
    ):
        value: Optional[Any] = getattr(args, option)
        if value is not None:
            changes[field] = value
    if not changes:
        raise CliError("say what to change: --remaining, --shelf or --price-per-kg", 2)
    spool = _run(
        args,
        "patch",
        spool_path(args.spool_id),
        lambda fleet, m: fleet.app.spools.update_spool(m, args.spool_id, changes),
        json=changes,
    )
    emit(spool, args.json, lambda: spool_line(spool))
    return EXIT_OK


def cmd_load(args: argparse.Namespace) -> int:
    spool = _run(
        args,
        "post",
        spool_path(args.spool_id) + "/load",
        lambda fleet, m: fleet.app.spools.load(m, args.spool_id, args.printer_id),
        json={"printer_id": args.printer_id},
    )
    emit(spool, args.json, lambda: f"loaded: {spool_line(spool)}")
    return EXIT_OK


def cmd_unload(args: argparse.Namespace) -> int:
    body = {} if args.shelf is None else {"shelf": args.shelf}
    spool = _run(
        args,
        "post",
        spool_path(args.spool_id) + "/unload",
        lambda fleet, m: fleet.app.spools.unload(m, args.spool_id, args.shelf),
        json=body,
    )
    emit(spool, args.json, lambda: f"unloaded: {spool_line(spool)}")
    return EXIT_OK


def add_spool_commands(
    sub: Subcommands, common: argparse.ArgumentParser, client: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """The ``spool`` group; the group's parser, for its own help."""
    spool = sub.add_parser(
        "spool", help="list, add, load and unload spools", description="The lab's spools of filament."
    )
    spool_sub = spool.add_subparsers(dest="spool_command", metavar="ACTION")
    listing = spool_sub.add_parser(
        "list", parents=[common, client], help="every spool, where it is, what is left"
    )
    listing.add_argument("--where", choices=("shelf", "loaded"), help="only spools on a shelf, or loaded")
    listing.set_defaults(func=cmd_list)

    add = spool_sub.add_parser("add", parents=[common, client], help="add a spool to a shelf (managers)")
    add.add_argument("--material", required=True, help="such as PLA, PETG or PLA+ (a known material)")
    add.add_argument("--colour", required=True, help="the colour's name, such as black")
    add.add_argument("--hex", required=True, help="the colour as #rrggbb")
    add.add_argument("--grams", type=float, required=True, help="filament on a full spool (net grams)")
    add.add_argument("--remaining", type=float, help="grams left, when the spool is not full")
    add.add_argument(
        "--price-per-kg", type=int, required=True, help="in minor units (cents) of the lab's currency"
    )
    add.add_argument("--diameter", type=float, default=1.75, help="mm: 1.75 (default), 2.85 or 3")
    add.add_argument("--vendor", default="", help="who made it")
    add.add_argument("--shelf", default="", help="where it is kept")
    add.set_defaults(func=cmd_add)

    change = spool_sub.add_parser("set", parents=[common, client], help="change a spool (managers)")
    change.add_argument("spool_id", type=positive_int)
    change.add_argument("--remaining", type=float, help="grams left (after weighing it)")
    change.add_argument("--shelf", help="where it is kept")
    change.add_argument("--price-per-kg", type=int, help="in minor units (cents)")
    change.set_defaults(func=cmd_set)

    load = spool_sub.add_parser("load", parents=[common, client], help="load a spool on a printer (managers)")
    load.add_argument("spool_id", type=positive_int)
    load.add_argument("printer_id", help="the printer's id")
    load.set_defaults(func=cmd_load)

    unload = spool_sub.add_parser("unload", parents=[common, client], help="take a spool off its printer")
    unload.add_argument("spool_id", type=positive_int)
    unload.add_argument("--shelf", help="the shelf it goes back to (default: where it was kept)")
    unload.set_defaults(func=cmd_unload)
    return spool
