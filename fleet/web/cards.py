"""What a printer card shows, as plain data: rendered by the page, then kept fresh by live updates."""

from __future__ import annotations

import base64
from typing import Any, Optional

from ..app.board import PrinterBoard
from ..models import Job, Member, Role
from ..states import PrinterState

#: Formats a browser can show (QOI thumbnails are left out).
BROWSER_IMAGES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}


def card(entry: PrinterBoard) -> dict[str, Any]:
    """A printer as every signed-in member may see it (no file names: those are the owner's)."""
    printer, live, job = entry.printer, entry.live, entry.job
    temps = {}
    if live is not None:
        temps = {
            name: [actual, target]
            for name, (actual, target) in sorted(
                live.temperatures.items(), key=lambda item: heater_order(item[0])
            )
        }
    showing_job = job is not None and printer.state is not PrinterState.OFFLINE
    progress = (
        live.progress if live is not None and showing_job and live.job_id == printer.current_job_id else None
    )
    return {
        "id": printer.id,
        "name": printer.name,
        "state": printer.state.value,
        "material": printer.material,
        "temps": temps,
        "progress": None if progress is None else round(progress, 1),
        "eta": None if progress is None or live is None or live.eta is None else round(live.eta),
        "job_id": job.id if job is not None else None,
        "job_member_id": job.member_id if job is not None else None,
        "member": entry.member_name,
        "thumbnail": job is not None and has_thumbnail(job),
        "plate_owner": entry.plate_owner,
        "plate_photo": entry.plate_photo,
        "message": live.message if live is not None else "",
    }


def heater_order(name: str) -> tuple[int, str]:
    """Nozzles first (tool0, tool1...), then the bed, the chamber and anything else, as printers list them."""
    rank = 0 if name.startswith("tool") or name == "hotend" else {"bed": 1, "chamber": 2}.get(name, 3)
    return rank, name


def may_see(viewer: Member, member_id: Optional[int]) -> bool:
    """Whether ``viewer`` may see the private side (file name, thumbnail) of a member's job."""
    return viewer.role is Role.MANAGER or viewer.id == member_id


def has_thumbnail(job: Job) -> bool:
    """Whether the job has a thumbnail a browser can show (without decoding it)."""
    thumbs = job.analysis.get("thumbnails") or []
    return any(str(t.get("format", "")).lower() in BROWSER_IMAGES and t.get("data") for t in thumbs)


def thumbnail(job: Job) -> Optional[tuple[bytes, str]]:
    """The largest thumbnail a browser can show, with its MIME type; None when there is none."""
    return best_thumbnail(job.analysis.get("thumbnails") or [])


def best_thumbnail(thumbs: list[dict[str, Any]]) -> Optional[tuple[bytes, str]]:
    shown = [t for t in thumbs if str(t.get("format", "")).lower() in BROWSER_IMAGES and t.get("data")]
    if not shown:
        return None
    best = max(shown, key=lambda t: int(t.get("width", 0)) * int(t.get("height", 0)))
    return base64.b64decode(best["data"]), BROWSER_IMAGES[str(best["format"]).lower()]
