"""``crowdfab-fleet analyze`` and ``job``: checking a file, and submitting, listing and cancelling jobs,
on the data dir directly or through a running fleet (``--fleet``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ..client import FleetRequestError
from ..errors import FleetError
from ..gcode.threemf import choosing_plate, several_plates
from ..http_protocol import MY_JOBS, QUEUE, JobSubmission, job_cancel_path
from .base import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    CliError,
    Progress,
    ProgressReader,
    ask,
    emit,
    local_member,
    open_fleet,
    positive_int,
    refused_or_unreachable,
    remote,
)

if TYPE_CHECKING:
    from .base import Subcommands


def cmd_analyze(args: argparse.Namespace) -> int:
    from ..gcode import DEFAULT_RULES, analyze_path

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
    try:
        analysis = analyze_path(path, rules=rules, material=args.material, plate=args.plate)
    except FleetError as exc:
        raise choosing_plate(exc, CHOOSE_PLATE) from None
    print(json.dumps(analysis.to_dict(), indent=2))
    return EXIT_REFUSED if analysis.refused else EXIT_OK


#: How the command line chooses the plate of a sliced 3MF file with several.
CHOOSE_PLATE = "choose the one to print with --plate (such as --plate {plate})"


def plate_refusal(exc: FleetRequestError, plate: Optional[int]) -> CliError:
    """The fleet's refusal as the exit code it means; asking for a plate (none was given), it says how
    to give one here rather than in the API's terms."""
    plates = exc.details.get("plates") if isinstance(exc.details, dict) else None
    if plate is None and exc.status is not None and isinstance(plates, list) and plates:
        return CliError(f"the fleet answered: {several_plates(plates, CHOOSE_PLATE).message}", EXIT_REFUSED)
    return refused_or_unreachable(exc)


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
        form = JobSubmission(
            copies=args.copies, material=args.material, note=args.note, plate=args.plate, colour=args.colour
        )

        def again(exc: FleetRequestError) -> None:
            nonlocal progress
            progress.finish()
            sys.stderr.write(f"{exc}\nsending it again with the same Idempotency-Key\n")
            progress = Progress(path.stat().st_size, "uploading", enabled=progress.enabled)

        try:
            # One key for this submission (the client's): a retry after a lost answer cannot queue it twice.
            data = client.submit_job(path, form, on_bytes=lambda n: progress.advance(n), on_retry=again)
        except FleetRequestError as exc:
            raise plate_refusal(exc, args.plate) from exc
        finally:
            progress.finish()
    else:
        from ..api.serialize import job_json

        fleet = open_fleet(args)
        try:
            member = local_member(fleet, args.member)
            with path.open("rb") as f:
                try:
                    submission = fleet.app.intake.submit_job(
                        member,
                        ProgressReader(f, progress),
                        filename=path.name,
                        copies=args.copies,
                        material=args.material,
                        note=args.note,
                        plate=args.plate,
                        colour=args.colour,
                    )
                except FleetError as exc:
                    raise choosing_plate(exc, CHOOSE_PLATE) from None
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
        from ..api.serialize import explanation_json, job_json

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
        from ..api.serialize import job_json

        fleet = open_fleet(args)
        try:
            member = local_member(fleet, args.member)
            job = job_json(fleet.app.jobs.cancel_job(member, args.job_id, args.reason), member)
        finally:
            fleet.close()
    emit(job, args.json, lambda: f"job {job['id']} is {job['state']}")
    return EXIT_OK


PLATE_HELP = "for a sliced 3MF file (.gcode.3mf) with several plates: the plate to print"


def add_job_commands(
    sub: Subcommands, common: argparse.ArgumentParser, client: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """``analyze`` and the ``job`` group; the group's parser, for its own help."""
    analyze = sub.add_parser(
        "analyze",
        parents=[common],
        help="analyse a G-code file and print the result as JSON",
        description="Analyse a G-code file with the lab's rules (exit 1 when the lab would refuse it).",
    )
    analyze.add_argument("file", help="the G-code file (.gcode, .bgcode or .gcode.3mf)")
    analyze.add_argument("--material", help="check temperatures against this material instead of the file's")
    analyze.add_argument("--plate", type=positive_int, metavar="N", help=PLATE_HELP)
    analyze.set_defaults(func=cmd_analyze)

    job = sub.add_parser("job", help="submit, list and cancel jobs", description="Work with print jobs.")
    job_sub = job.add_subparsers(dest="job_command", metavar="ACTION")
    submit = job_sub.add_parser("submit", parents=[common, client], help="submit a G-code file to the queue")
    submit.add_argument("file", help="the G-code file (.gcode, .bgcode or .gcode.3mf)")
    submit.add_argument("--plate", type=positive_int, metavar="N", help=PLATE_HELP)
    submit.add_argument("--copies", type=positive_int, default=1, help="how many copies (default 1)")
    submit.add_argument("--material", help="the material to print with (default: the file's)")
    submit.add_argument(
        "--colour", help="a colour's name such as black: only a printer with that colour loaded takes it"
    )
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
    return job
