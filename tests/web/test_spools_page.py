"""The spools page: every member sees spools; a manager adds, loads and unloads them, in either language."""

from __future__ import annotations

import re

FORM = {
    "material": "petg",
    "colour_name": "black",
    "colour_hex": "#1a1a1a",
    "diameter_mm": "1.75",
    "vendor": "Prusament",
    "net_grams": "1000",
    "remaining_grams": "",
    "price_per_kg": "2990",
    "shelf": "B2",
}


def row(page: str, spool_id: int) -> str:
    found = re.search(rf'<tr id="spool-{spool_id}".*?</tr>', page, re.S)
    assert found, page
    return found.group(0)


def test_a_manager_adds_loads_and_unloads_a_spool_and_members_see_it(browsers, fleet, printer):
    manager = browsers["manager"]
    added = manager.post("/spools", FORM)
    assert added.status_code == 303, added.get_data(as_text=True)
    (spool,) = fleet.app.spools.spool_page().items
    assert (spool.material, spool.remaining_grams, spool.price_per_kg) == ("PETG", 1000.0, 2990)

    assert manager.post(f"/spools/{spool.id}/load", {"printer_id": "mk4"}).status_code == 303
    assert fleet.store.get_printer("mk4").material == "PETG"
    seen = browsers["alice"].get("/spools").get_data(as_text=True)
    line = row(seen, spool.id)
    assert "black" in line and 'href="/printers/mk4"' in line and "1000 / 1000 g" in line
    assert "29.90 / kg" in line
    assert 'action="/spools' not in seen, "a member gets no forms"
    card = browsers["alice"].get("/printers/mk4").get_data(as_text=True)
    assert re.search(r'data-field="spool"><a href="/spools#spool-\d+">black PETG</a> · 1000 g left', card)

    assert manager.post(f"/spools/{spool.id}/unload").status_code == 303
    assert fleet.app.spools.get_spool(spool.id).printer_id is None


def test_a_bad_spool_is_refused_in_the_pages_language_and_nothing_is_kept(browsers, fleet):
    manager = browsers["manager"]
    manager.post("/language", {"lang": "fr", "next": "/spools"})
    refused = manager.post("/spools", {**FORM, "material": "boue"})
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "Cette matière est inconnue" in page and 'aria-invalid="true"' in page
    assert 'value="boue"' in page, "what was typed is kept in the form"
    assert fleet.app.spools.spool_page().items == []


def test_members_cannot_add_or_load_spools(browsers, fleet, printer):
    spool = fleet.app.spools.add_spool(
        fleet.store.get_member_by_name("manager"),
        {k: v for k, v in FORM.items() if v}
        | {"net_grams": 1000.0, "diameter_mm": 1.75, "price_per_kg": 2990},
    )
    alice = browsers["alice"]
    assert alice.post("/spools", FORM).status_code == 403
    assert alice.post(f"/spools/{spool.id}/load", {"printer_id": "mk4"}).status_code == 403
    assert fleet.app.spools.get_spool(spool.id).printer_id is None


def test_a_job_submitted_in_a_colour_keeps_it(browsers, fleet, printer):
    import io

    part = b"M82\nG28\nG92 E0\nG1 Z0.2 F600\nG1 X10 Y10 F3000\nG1 X50 Y10 E2 F1200\n"
    alice = browsers["alice"]
    sent = alice.http.post(
        "/submit/confirm",
        data={"csrf": alice.csrf("/submit"), "file": (io.BytesIO(part), "part.gcode"), "colour": "Black"},
        content_type="multipart/form-data",
    )
    assert sent.status_code == 303, sent.get_data(as_text=True)
    (job,) = fleet.store.list_jobs()
    assert job.colour == "Black"
