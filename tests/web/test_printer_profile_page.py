"""The printer page shows the printer profile the node reported, and says so where it did not."""

from __future__ import annotations

import re

from fleet.lending import decode_lending


def facts(page: str) -> dict[str, str]:
    return dict(re.findall(r"<div><dt>([^<]+)</dt><dd>([^<]*)</dd></div>", page))


def test_the_printer_page_shows_the_profile_and_what_is_not_reported(browsers, fleet, printer):
    shown = facts(browsers["alice"].get("/printers/mk4").get_data(as_text=True))
    assert [shown[k] for k in ("Bed", "Heated bed", "Heated chamber", "Extruders")] == [
        "not reported by the printer"
    ] * 4

    fleet.app.store.update_printer(
        "mk4", bed_shape="circular", heated_bed=True, heated_chamber=False, extruders=2
    )
    shown = facts(browsers["alice"].get("/printers/mk4").get_data(as_text=True))
    assert (shown["Bed"], shown["Heated bed"], shown["Heated chamber"], shown["Extruders"]) == (
        "round (the circle inside the volume)",
        "yes",
        "no",
        "2",
    )


def test_the_printer_page_shows_the_owners_lending_terms(browsers, fleet, printer):
    assert facts(browsers["alice"].get("/printers/mk4").get_data(as_text=True))["Lent to the fleet"] == (
        "whenever idle, any material"
    )
    terms = decode_lending(
        {
            "time_zone": "Europe/Paris",
            "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "20:00", "end": "08:00"}],
            "materials": ["PLA", "PETG"],
        }
    )
    fleet.app.store.update_printer("mk4", lending=terms)
    shown = facts(browsers["alice"].get("/printers/mk4").get_data(as_text=True))
    assert shown["Lent to the fleet"] == "weeknights 20:00-08:00 (Europe/Paris) for PETG, PLA"
