"""The plate's photo on the dashboard: on the job's page, and beside "bed cleared" on the printer's page."""

from __future__ import annotations

import io

from fleet.gcode.generate import generate_box
from fleet.states import JobState
from fleet.store import PlateSnapshot

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def finished_job(fleet, people, printer) -> int:
    svc = fleet.app
    svc.store.update_printer(printer.id, state="idle")
    job_id = svc.intake.submit_job(people["alice"], io.BytesIO(generate_box().encode()), filename="a.gcode")
    job_id = job_id.jobs[0].id
    assert svc.dispatcher.dispatch_pass() == [(job_id, printer.id)]
    svc.reports.printer_job_event(printer.id, job_id, JobState.PRINTING, "started")
    svc.reports.finish_job(job_id, JobState.DONE, actor=f"printer:{printer.id}", reason="finished")
    return job_id


def test_the_photo_shows_to_those_who_may_see_the_job(fleet, people, printer, browsers) -> None:
    job_id = finished_job(fleet, people, printer)
    photo = f'src="/jobs/{job_id}/snapshot"'
    assert photo not in browsers["alice"].get(f"/jobs/{job_id}").get_data(as_text=True)
    assert photo not in browsers["alice"].get("/printers/mk4").get_data(as_text=True)
    assert browsers["alice"].get(f"/jobs/{job_id}/snapshot").status_code == 404

    fleet.store.add_snapshot(PlateSnapshot(printer.id, job_id, "image/png", fleet.app.clock(), PNG))
    for who in ("alice", "manager"):
        assert photo in browsers[who].get(f"/jobs/{job_id}").get_data(as_text=True)
        printer_page = browsers[who].get("/printers/mk4").get_data(as_text=True)
        assert photo in printer_page and "bed-cleared" in printer_page
        got = browsers[who].get(f"/jobs/{job_id}/snapshot")
        assert got.status_code == 200 and got.data == PNG and got.mimetype == "image/png"
    assert photo not in browsers["bob"].get("/printers/mk4").get_data(as_text=True)
    assert browsers["bob"].get(f"/jobs/{job_id}/snapshot").status_code == 403
    assert browsers["anonymous"].get(f"/jobs/{job_id}/snapshot").status_code == 401  # an <img> asks

    # Once the bed is cleared, the printer's page no longer shows the old plate; the job's page still does.
    fleet.app.printers.confirm_bed_cleared(people["manager"], printer.id)
    assert photo not in browsers["manager"].get("/printers/mk4").get_data(as_text=True)
    assert photo in browsers["manager"].get(f"/jobs/{job_id}").get_data(as_text=True)


def test_a_manager_asks_for_a_photo_from_the_printers_page(fleet, people, printer, browsers) -> None:
    job_id = finished_job(fleet, people, printer)
    assert "Ask for a photo of the plate" in browsers["manager"].get("/printers/mk4").get_data(as_text=True)
    assert "Ask for a photo of the plate" not in browsers["alice"].get("/printers/mk4").get_data(as_text=True)
    sent = []
    fleet.app.hooks.on_printer_command(lambda printer_id, command, job: sent.append((printer_id, job)))
    assert browsers["alice"].post("/printers/mk4/snapshot").status_code == 403
    asked = browsers["manager"].post("/printers/mk4/snapshot")
    assert asked.status_code in (302, 303) and asked.headers["Location"].endswith(f"/jobs/{job_id}")
    assert sent == [("mk4", job_id)]


def test_the_printers_overview_shows_the_photo_on_the_card_to_those_who_may_clear_the_bed(
    fleet, people, printer, browsers
) -> None:
    from fleet.web.cards import card

    job_id = finished_job(fleet, people, printer)
    photo = f'src="/jobs/{job_id}/snapshot"'
    overview = browsers["alice"].get("/").get_data(as_text=True)
    assert photo not in overview and 'data-field="plate" hidden' in overview  # no photo: no image
    [entry] = fleet.app.board.printer_board()
    assert card(entry)["plate_photo"] is None

    fleet.store.add_snapshot(PlateSnapshot(printer.id, job_id, "image/png", fleet.app.clock(), PNG))
    [entry] = fleet.app.board.printer_board()
    assert card(entry)["plate_photo"] == job_id and card(entry)["plate_owner"] == people["alice"].id
    for who in ("alice", "manager"):
        overview = browsers[who].get("/").get_data(as_text=True)
        assert photo in overview and "bed-cleared" in overview
    assert photo not in browsers["bob"].get("/").get_data(as_text=True)

    fleet.app.printers.confirm_bed_cleared(people["manager"], printer.id)
    [entry] = fleet.app.board.printer_board()
    assert card(entry)["plate_photo"] is None
    assert photo not in browsers["manager"].get("/").get_data(as_text=True)
