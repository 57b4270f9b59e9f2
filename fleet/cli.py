"""``crowdfab-fleet``: run the fleet and administer it from a terminal.

Exit codes: 0 success; 1 the fleet refused the request (invalid file, not allowed, not found);
2 the command line is wrong; 3 the fleet or its database could not be reached.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, BinaryIO, Callable, Optional, TypeVar

from . import __version__
from .client import FleetClient, FleetRequestError
from .config import DEFAULT_PORT, FleetConfig, default_data_dir
from .errors import FleetError, NotFound, Unavailable
from .http_protocol import MY_JOBS, QUEUE, JobSubmission, job_cancel_path
from .models import Role

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
Number = TypeVar("Number", int, float)


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


# -- commands -------------------------------------------------------------------------------------


def config_of(args: argparse.Namespace) -> FleetConfig:
    return FleetConfig(
        data_dir=Path(args.data_dir).expanduser(),
        database_url=args.database_url or os.environ.get("CROWDFAB_DATABASE_URL"),
        host=getattr(args, "host", "127.0.0.1"),
        port=getattr(args, "port", DEFAULT_PORT),
        trusted_proxies=getattr(args, "trusted_proxies", 0),
    )


def open_fleet(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .server import Fleet

    try:
        return Fleet.open(config_of(args))
    except FleetError:
        raise
    except Exception as exc:  # the database or the data directory is not usable
        raise CliError(f"cannot open the fleet's data in {args.data_dir}: {exc}", EXIT_UNREACHABLE) from exc


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import LinkOptions, serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = LinkOptions(
        mqtt_port=args.mqtt_port,
        mqtt_url=args.mqtt_url or os.environ.get("CROWDFAB_MQTT_URL"),
        mqtt_public_host=args.mqtt_public_host,
        public_url=args.public_url,
    )
    try:
        serve(config_of(args), options)
    except Unavailable as exc:  # no broker to run or reach: the message says how to fix it
        raise CliError(exc.message, EXIT_UNREACHABLE) from exc
    return EXIT_OK


def cmd_enroll_code(args: argparse.Namespace) -> int:
    from .api.serialize import iso

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


def cmd_analyze(args: argparse.Namespace) -> int:
    from .gcode import DEFAULT_RULES, analyze_path

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"{path}: no such file", EXIT_USAGE)
    rules = DEFAULT_RULES
    data_dir = Path(args.data_dir).expanduser()
    if args.database_url or (data_dir / "fleet.db").exists():
        fleet = open_fleet(args)  # the lab's own rules apply
        try:
            rules = fleet.app.lab.settings().rules
        finally:
            fleet.close()
    analysis = analyze_path(path, rules=rules, material=args.material)
    print(json.dumps(analysis.to_dict(), indent=2))
    return EXIT_REFUSED if analysis.refused else EXIT_OK


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


def job_line(job: dict[str, Any]) -> str:
    where = job.get("explanation") or {}
    why = where.get("message") or ""
    return f"{job['id']:>5}  {job['state']:<18} {job.get('filename', ''):<32} {why}"


def cmd_job_submit(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"{path}: no such file", EXIT_USAGE)
    progress = Progress(
        path.stat().st_size, "uploading", enabled=None if args.progress is None else args.progress
    )
    client = remote(args)
    if client:
        form = JobSubmission(copies=args.copies, material=args.material, note=args.note)

        def again(exc: FleetRequestError) -> None:
            nonlocal progress
            progress.finish()
            sys.stderr.write(f"{exc}\nsending it again with the same Idempotency-Key\n")
            progress = Progress(path.stat().st_size, "uploading", enabled=progress.enabled)

        try:
            # One key for this submission (the client's): a retry after a lost answer cannot queue it twice.
            data = client.submit_job(path, form, on_bytes=lambda n: progress.advance(n), on_retry=again)
        except FleetRequestError as exc:
            raise refused_or_unreachable(exc) from exc
        finally:
            progress.finish()
    else:
        from .api.serialize import job_json

        fleet = open_fleet(args)
        try:
            member = local_member(fleet, args.member)
            with path.open("rb") as f:
                submission = fleet.app.intake.submit_job(
                    member,
                    ProgressReader(f, progress),
                    filename=path.name,
                    copies=args.copies,
                    material=args.material,
                    note=args.note,
                )
            progress.finish()
            data = {
                "jobs": [job_json(j, member) for j in submission.jobs],
                "analysis": submission.analysis.to_dict(),
            }
        finally:
            fleet.close()
    ids = ", ".join(str(j["id"]) for j in data["jobs"])
    emit(data, args.json, lambda: f"submitted: job {ids} ({data['jobs'][0]['state']})")
    return EXIT_OK


def cmd_job_list(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        if args.queue:
            jobs = ask(client, "get", QUEUE).get("queue", [])
        else:  # a page at a time, to the last
            jobs, cursor = [], None
            while True:
                asked: dict[str, str] = {"cursor": cursor} if cursor else {}
                page = ask(client, "get", MY_JOBS, params=asked)
                jobs += page.get("jobs", [])
                cursor = page.get("next_cursor")
                if not cursor:
                    break
    else:
        from .api.serialize import explanation_json, job_json

        fleet = open_fleet(args)
        try:
            member = local_member(fleet, args.member)
            if args.queue:
                jobs = [
                    {**job_json(e.job, member), "explanation": explanation_json(e.explanation)}
                    for e in fleet.app.dispatcher.queue(member)
                ]
            else:
                waiting = {e.job.id: e.explanation for e in fleet.app.dispatcher.queue(member)}
                jobs = [
                    {**job_json(j, member), "explanation": explanation_json(waiting.get(j.id))}
                    for j in fleet.app.jobs.my_jobs(member)
                ]
        finally:
            fleet.close()
    emit(
        jobs,
        args.json,
        lambda: "\n".join([f"{'ID':>5}  {'STATE':<18} {'FILE':<32} WHY"] + [job_line(j) for j in jobs]),
    )
    return EXIT_OK


def cmd_job_cancel(args: argparse.Namespace) -> int:
    client = remote(args)
    if client:
        job = ask(client, "post", job_cancel_path(args.job_id), json={"reason": args.reason})
    else:
        from .api.serialize import job_json

        fleet = open_fleet(args)
        try:
            member = local_member(fleet, args.member)
            job = job_json(fleet.app.jobs.cancel_job(member, args.job_id, args.reason), member)
        finally:
            fleet.close()
    emit(job, args.json, lambda: f"job {job['id']} is {job['state']}")
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------------------


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


def build_parser() -> argparse.ArgumentParser:
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

    parser = argparse.ArgumentParser(
        prog="crowdfab-fleet",
        description="The CrowdFab fleet: a fair community queue for a lab's 3D printers.",
        epilog="Exit codes: 0 success, 1 refused by the fleet, 2 usage error, 3 fleet or database down.",
    )
    parser.add_argument("--version", action="version", version=f"crowdfab-fleet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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

    analyze = sub.add_parser(
        "analyze",
        parents=[common],
        help="analyse a G-code file and print the result as JSON",
        description="Analyse a G-code file with the lab's rules (exit 1 when the lab would refuse it).",
    )
    analyze.add_argument("file", help="the G-code file (.gcode, .bgcode or a one-plate .gcode.3mf)")
    analyze.add_argument("--material", help="check temperatures against this material instead of the file's")
    analyze.set_defaults(func=cmd_analyze)

    job = sub.add_parser("job", help="submit, list and cancel jobs", description="Work with print jobs.")
    job_sub = job.add_subparsers(dest="job_command", metavar="ACTION")
    submit = job_sub.add_parser("submit", parents=[common, client], help="submit a G-code file to the queue")
    submit.add_argument("file", help="the G-code file (.gcode, .bgcode or a one-plate .gcode.3mf)")
    submit.add_argument("--copies", type=positive_int, default=1, help="how many copies (default 1)")
    submit.add_argument("--material", help="the material to print with (default: the file's)")
    submit.add_argument("--note", default="", help="a note for the lab's managers")
    submit.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw a progress bar (default: on a terminal)",
    )
    submit.set_defaults(func=cmd_job_submit)
    jlist = job_sub.add_parser("list", parents=[common, client], help="list my jobs, or the whole queue")
    jlist.add_argument("--queue", action="store_true", help="the whole queue, with why each job waits")
    jlist.set_defaults(func=cmd_job_list)
    cancel = job_sub.add_parser("cancel", parents=[common, client], help="cancel a job")
    cancel.add_argument("job_id", type=positive_int, help="the job's id")
    cancel.add_argument("--reason", default="", help="why (recorded in the job's history)")
    cancel.set_defaults(func=cmd_job_cancel)
    parser.groups = {"member": member, "job": job}  # type: ignore[attr-defined]
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


if __name__ == "__main__":
    sys.exit(main())
