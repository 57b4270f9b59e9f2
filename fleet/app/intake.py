"""Uploads becoming jobs: analysis, the lab's checks, idempotent submissions, and cleaning up after them."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, BinaryIO, Optional

from ..errors import Invalid
from ..gcode import Analysis, analyze_stream, refusal_message
from ..models import Job, Member
from ..spools import check_colour_name
from ..states import JobState
from ..store import SubmissionKey
from .base import Context, actor_of
from .checks import check_material

MAX_NOTE = 500
#: Slicers number plates from 1; an archive names at most four digits (see :mod:`fleet.gcode.threemf`).
MAX_PLATE = 9999
MAX_FILENAME = 120
#: How long a submission's ``Idempotency-Key`` answers with the jobs it made (then it is forgotten).
SUBMISSION_KEY_TTL_S = 24 * 3600.0
#: Expired keys are swept by the first keyed submission after this long.
SUBMISSION_KEY_SWEEP_S = 3600.0
#: A key as the IETF httpapi draft's ``Idempotency-Key`` carries it: printable ASCII, 1 to 128 characters.
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x20-\x7e]{1,128}$")


@dataclass(frozen=True)
class Submission:
    jobs: list[Job]
    analysis: Analysis


def clean_filename(name: str | None) -> str:
    """A display name for an uploaded file: no path, no control characters, bounded length."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C")
    base = base.strip().lstrip(".")
    stem, dot, ext = base.rpartition(".")
    if len(base) > MAX_FILENAME and dot and len(ext) <= 16:  # shorten the name, not its extension
        base = stem[: MAX_FILENAME - len(ext) - 1] + dot + ext
    return base[:MAX_FILENAME] or "upload.gcode"


def check_idempotency_key(value: Any, field: str = "Idempotency-Key") -> str:
    """A submission's idempotency key: 1 to 128 printable ASCII characters."""
    if not isinstance(value, str) or not IDEMPOTENCY_KEY_RE.match(value) or not value.strip():
        raise Invalid(
            f"{field} must be 1 to 128 printable ASCII characters (a fresh random value, such as a "
            "UUID, for each new submission)",
            field=field,
            key="idempotency_key_invalid",
        )
    return value


def check_plate(value: Any) -> Optional[int]:
    """The plate of a sliced 3MF archive to print: None (the only one), or a whole number from 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PLATE:
        raise Invalid(
            f"plate must be a plate's number, a whole number from 1 to {MAX_PLATE}",
            field="plate",
            key="plate_number",
            params={"max": MAX_PLATE},
        )
    return value


def plate_from_form(text: Any) -> Optional[int]:
    """A form's ``plate`` field: empty is no choice, else the digits of a plate's number."""
    if text is None or text == "":
        return None
    digits = text.strip() if isinstance(text, str) else ""
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise Invalid(
            "plate must be a whole number: the number of the plate to print in the sliced 3MF file",
            field="plate",
            key="plate_number",
            params={"max": MAX_PLATE},
        )
    return int(digits)


def submission_hash(
    file_sha256: str, copies: int, material: Optional[str], note: str, colour: Optional[str] = None
) -> str:
    """What a submission asked for, as one SHA-256: a retry with the same key must ask for the same."""
    fields: list[object] = [file_sha256, copies, material, note]
    if colour is not None:  # a submission without a colour hashes as it always did
        fields.append(colour.casefold())
    asked = json.dumps(fields, separators=(",", ":"))
    return hashlib.sha256(asked.encode("utf-8")).hexdigest()


class Intake:
    """Takes members' files in: nothing refused is kept, and a retried submission makes no second job."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.blobs = ctx.blobs
        #: When keyed submissions next sweep the expired keys (a fleet may run for months).
        self._next_key_sweep = float("-inf")

    def analyze_upload(
        self, stream: BinaryIO, *, material: Optional[str] = None, plate: Optional[int] = None
    ) -> Analysis:
        """Analyse a file without keeping it (the dashboard's preview before a member confirms).

        ``plate`` picks the plate of a sliced 3MF archive that holds several.
        """
        lab = self.ctx.lab_settings()
        plate = check_plate(plate)
        with self.blobs.staging(max_bytes=lab.max_upload_bytes) as staged:
            staged.write_from(stream, plate=plate)
            with staged.open() as written:
                return analyze_stream(written, rules=lab.rules, material=material)

    def submit_job(
        self,
        actor: Member,
        stream: BinaryIO,
        *,
        filename: Optional[str],
        copies: int = 1,
        material: Optional[str] = None,
        note: str = "",
        idempotency_key: Optional[str] = None,
        plate: Optional[int] = None,
        colour: Optional[str] = None,
    ) -> Submission:
        """Analyse an upload and queue it; a refused file leaves nothing behind.

        ``plate`` picks the plate of a sliced 3MF archive that holds several (what is stored, and
        sent to the printer, is that plate's G-code). ``colour`` (a name such as "black") sends the
        job only to a printer with a spool of that colour loaded; None takes any colour.

        With ``idempotency_key``, a repeat of the same request within :data:`SUBMISSION_KEY_TTL_S`
        answers the jobs the first one made and creates nothing; the same key with another file,
        copies, material or note is :class:`Invalid`.
        """
        lab = self.ctx.lab_settings()
        key = None if idempotency_key is None else check_idempotency_key(idempotency_key)
        now = self.ctx.clock()
        if key is not None and now >= self._next_key_sweep:
            self._next_key_sweep = now + SUBMISSION_KEY_SWEEP_S
            self.store.remove_expired_submission_keys(now - SUBMISSION_KEY_TTL_S)
        if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= lab.max_copies:
            raise Invalid(
                f"copies must be a whole number from 1 to {lab.max_copies}",
                field="copies",
                key="copies_range",
                params={"max": lab.max_copies},
            )
        requested_material = check_material(material)
        requested_colour = None if colour is None or colour == "" else check_colour_name(colour, "colour")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise Invalid(
                f"note must be text of at most {MAX_NOTE} characters",
                field="note",
                key="note_too_long",
                params={"max": MAX_NOTE},
            )
        note = note.strip()
        plate = check_plate(plate)
        claim: Optional[SubmissionKey] = None
        with self.blobs.staging(max_bytes=lab.max_upload_bytes) as staged:
            # The file's hash below is of the chosen plate's G-code: another plate is another request.
            staged.write_from(stream, plate=plate)
            if key is not None:
                asked = submission_hash(staged.sha256, copies, requested_material, note, requested_colour)
                claim = SubmissionKey(key, asked, valid_after=now - SUBMISSION_KEY_TTL_S)
                earlier = self.store.keyed_submission(actor.id, claim)
                if earlier:
                    # A repeat: the staged copy goes (the file is stored already), the jobs are the first's.
                    return Submission(jobs=earlier, analysis=Analysis.from_dict(earlier[0].analysis))
            with staged.open() as written:
                analysis = analyze_stream(written, rules=lab.rules, material=requested_material)
            if analysis.refused:
                raise Invalid(
                    refusal_message(analysis),
                    field="file",
                    details={"findings": [f.to_dict() for f in analysis.findings]},
                )
            blob = staged.commit()
        job_material = requested_material or check_material(analysis.material, "the file's material")
        needs_approval = (
            actor.requires_approval if actor.requires_approval is not None else lab.approval_required
        )
        if needs_approval:
            target, why = JobState.AWAITING_APPROVAL, "the lab asks a manager to approve this member's jobs"
        else:
            target, why = JobState.QUEUED, "the file passed the lab's checks"
        # One transaction from upload to queue: a crash leaves either no job or a waiting one.
        queued = self.store.create_jobs(
            actor.id,
            count=copies,
            state=JobState.SUBMITTED,
            file_sha256=blob.sha256,
            filename=clean_filename(filename),
            size_bytes=blob.size,
            material=job_material,
            colour=requested_colour,
            note=note,
            analysis=analysis.to_dict(),
            actor=actor_of(actor),
            reason="uploaded",
            now=now,
            then=[(target, "system", why)],
            idempotency=claim,
        )
        self.ctx.job_changed(queued[0])
        if target is JobState.QUEUED:
            self.ctx.work_available()
        return Submission(jobs=queued, analysis=analysis)

    def remove_orphan_blobs(self, older_than_s: float = 3600.0) -> int:
        """Delete stored files no job refers to, older than ``older_than_s``; returns how many.

        They are left when the fleet stops between storing an upload and recording its job (the
        member got no answer and sends it again). The age keeps a file that another fleet process
        stored a moment ago, and is about to record, out of reach.
        """
        cutoff = self.ctx.clock() - older_than_s
        referenced = self.store.referenced_blobs()
        removed = 0
        for sha256, changed_at in list(self.blobs.stored()):
            if changed_at < cutoff and sha256 not in referenced and self.blobs.delete(sha256):
                removed += 1
        return removed

    def remove_expired_submission_keys(self) -> int:
        """Forget idempotency keys older than :data:`SUBMISSION_KEY_TTL_S`; returns how many."""
        return self.store.remove_expired_submission_keys(self.ctx.clock() - SUBMISSION_KEY_TTL_S)
