"""What every ``crowdfab-fleet`` command shares: exit codes, output, the fleet it works on, argument types."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Optional, TypeVar

from ..client import FleetClient, FleetRequestError
from ..config import DEFAULT_PORT, FleetConfig, MetricsAccess, default_data_dir
from ..errors import FleetError, NotFound

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
Number = TypeVar("Number", int, float)
if TYPE_CHECKING:
    #: What ``add_subparsers()`` gives: each command group adds its commands to it.
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


# -- output ---------------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr, drawn only for a person at a terminal."""

    def __init__(self, total: int, label: str, enabled: Optional[bool] = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.done = 0
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._last = -1

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        pct = min(100, self.done * 100 // self.total)
        if pct != self._last:
            self._last = pct
            bar = "#" * (pct // 4)
            sys.stderr.write(f"\r{self.label} [{bar:<25}] {pct:3d}% ({self.done / 1e6:.1f} MB)")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


class ProgressReader:
    """Wraps a binary stream so every read advances a progress bar."""

    def __init__(self, stream: BinaryIO, progress: Progress) -> None:
        self.stream = stream
        self.progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.progress.advance(len(data))
        return data


def emit(data: Any, as_json: bool, text: Callable[[], str]) -> None:
    print(json.dumps(data, indent=2) if as_json else text())


# -- the fleet a command works on -----------------------------------------------------------------


def config_of(args: argparse.Namespace) -> FleetConfig:
    return FleetConfig(
        data_dir=Path(args.data_dir).expanduser(),
        database_url=args.database_url or os.environ.get("CROWDFAB_DATABASE_URL"),
        host=getattr(args, "host", "127.0.0.1"),
        port=getattr(args, "port", DEFAULT_PORT),
        trusted_proxies=getattr(args, "trusted_proxies", 0),
        metrics=metrics_access(args),
    )


def metrics_access(args: argparse.Namespace) -> MetricsAccess:
    """Who may scrape ``/metrics``: ``--metrics-token-file`` (else ``$CROWDFAB_METRICS_TOKEN``) and
    ``--metrics-allow`` (else ``$CROWDFAB_METRICS_ALLOW``); neither leaves scraping off. Only
    ``serve`` takes them: other commands serve nothing."""
    if not hasattr(args, "metrics_allow"):
        return MetricsAccess()
    token_file = args.metrics_token_file
    token = os.environ.get("CROWDFAB_METRICS_TOKEN") or None
    if token_file:
        try:
            token = Path(token_file).expanduser().read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read the metrics token file {token_file}: {exc}", EXIT_USAGE) from exc
    allow = args.metrics_allow or os.environ.get("CROWDFAB_METRICS_ALLOW") or None
    try:
        return MetricsAccess.of(token, allow)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def open_fleet(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ..server import Fleet

    try:
        return Fleet.open(config_of(args))
    except FleetError:
        raise
    except Exception as exc:  # the database or the data directory is not usable
        raise CliError(f"cannot open the fleet's data in {args.data_dir}: {exc}", EXIT_UNREACHABLE) from exc


def remote(args: argparse.Namespace) -> Optional[FleetClient]:
    """The fleet ``--fleet`` (or ``$CROWDFAB_FLEET_URL``) names, as the member whose token is given."""
    url = args.fleet or os.environ.get("CROWDFAB_FLEET_URL")
    if not url:
        return None
    token = args.token or os.environ.get("CROWDFAB_TOKEN")
    if not token:
        raise CliError("--fleet needs a member's API token: --token or CROWDFAB_TOKEN", EXIT_USAGE)
    try:
        return FleetClient(url, token)
    except FleetRequestError as exc:
        raise CliError(exc.message, EXIT_USAGE) from exc


def refused_or_unreachable(exc: FleetRequestError) -> CliError:
    """A refusal (4xx) exits 1; no answer, or a fleet that failed, exits 3."""
    return CliError(exc.message, EXIT_REFUSED if exc.status is not None else EXIT_UNREACHABLE)


def ask(client: FleetClient, method: str, path: str, **kwargs: Any) -> Any:
    """One call to the fleet; its failure as the exit code it means."""
    try:
        return client.request_json(method, path, **kwargs)
    except FleetRequestError as exc:
        raise refused_or_unreachable(exc) from exc


def local_member(fleet: Any, name: Optional[str]):  # type: ignore[no-untyped-def]
    if not name:
        raise CliError("name the member with --member NAME (or use --fleet URL --token TOKEN)", EXIT_USAGE)
    member = fleet.store.get_member_by_name(name)
    if member is None:
        raise NotFound(f"no member named {name!r}; add one with 'crowdfab-fleet member add'")
    return member


# -- argument types and shared options ------------------------------------------------------------


def ranged(
    convert: Callable[[str], Number], noun: str, accept: Callable[[Number], bool], rule: str
) -> Callable[[str], Number]:
    """An argparse type: ``convert`` the text (else "'x' is not <noun>"), then check it (else ``rule``)."""

    def parse(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(rule)
        return value

    return parse


positive_int = ranged(int, "a whole number", lambda v: v >= 1, "must be 1 or more")
port_number = ranged(int, "a port number", lambda v: 0 <= v <= 65535, "a port is from 0 to 65535")
positive_float = ranged(float, "a number", lambda v: v > 0, "must be more than 0")
proxy_count = ranged(int, "a whole number", lambda v: 0 <= v <= 10, "must be from 0 to 10")
fraction = ranged(float, "a number", lambda v: 0.0 <= v <= 1.0, "must be from 0 to 1")


def shared_options() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The options every command takes (the data dir, JSON output), and those of commands that can also
    talk to a running fleet instead."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        default=str(default_data_dir()),
        help="where the fleet keeps its database and files (default: $CROWDFAB_DATA_DIR or ~/.crowdfab)",
    )
    common.add_argument(
        "--database-url",
        default=None,
        help="a database URL such as postgresql+psycopg://user@host/db (default: SQLite in the data dir; "
        "or $CROWDFAB_DATABASE_URL)",
    )
    common.add_argument("--json", action="store_true", help="print JSON for scripts")

    client = argparse.ArgumentParser(add_help=False)
    client.add_argument(
        "--fleet", help="talk to a running fleet at this URL instead of the data dir ($CROWDFAB_FLEET_URL)"
    )
    client.add_argument("--token", help="your API token for --fleet ($CROWDFAB_TOKEN)")
    client.add_argument("--member", help="act as this member, working on the data dir directly")

    return common, client
