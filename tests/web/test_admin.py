"""The manager pages: printer grants per member and the lab's G-code rules."""

from __future__ import annotations

import re

import pytest

from fleet.geometry import Box
from fleet.models import NewPrinter, PrinterSpec
from tests.web.conftest import VOLUME


@pytest.fixture
def vault(fleet, people):
    """A restricted printer beside the open one."""
    return fleet.app.printers.add_printer(
        people["manager"],
        NewPrinter("vault", "Resin Vault", PrinterSpec(Box.from_dict(VOLUME)), restricted=True),
    )


def grants_of(fleet, people, name):
    return fleet.app.members.grants_for(people["manager"], people[name].id)


def test_managers_grant_and_withdraw_restricted_printers(browsers, fleet, people, printer, vault):
    manager = browsers["manager"]
    page = manager.get("/members").get_data(as_text=True)
    alice_id = people["alice"].id
    form = re.search(rf'<li id="member-{alice_id}".*?</li>', page, re.S).group(0)
    assert 'name="printer" value="vault"' in form
    assert 'value="mk4"' not in form  # an open printer needs no grant

    done = manager.post(f"/members/{alice_id}/grants", {"printer": "vault"})
    assert done.status_code == 303
    assert grants_of(fleet, people, "alice") == frozenset({"vault"})
    assert grants_of(fleet, people, "bob") == frozenset()
    page = manager.get("/members").get_data(as_text=True)
    form = re.search(rf'<li id="member-{alice_id}".*?</li>', page, re.S).group(0)
    assert 'value="vault" checked' in form and "Granted printers:\n      Resin Vault" in form

    assert manager.post(f"/members/{alice_id}/grants", {}).status_code == 303  # every box unticked
    assert grants_of(fleet, people, "alice") == frozenset()


def test_members_cannot_open_or_post_the_grants(browsers, fleet, people, vault):
    alice = browsers["alice"]
    assert alice.get("/members").status_code == 403
    assert alice.post(f"/members/{people['alice'].id}/grants", {"printer": "vault"}).status_code == 403
    assert grants_of(fleet, people, "alice") == frozenset()
    assert "/members" not in alice.get("/").get_data(as_text=True)
    assert 'href="/members"' in browsers["manager"].get("/").get_data(as_text=True)


def test_a_grant_without_the_csrf_token_is_refused(browsers, fleet, people, vault):
    url = f"/members/{people['alice'].id}/grants"
    refused = browsers["manager"].http.post(url, data={"printer": "vault"})
    assert refused.status_code == 400
    refused = browsers["manager"].http.post(url, data={"printer": "vault", "csrf": "forged"})
    assert refused.status_code == 400
    assert grants_of(fleet, people, "alice") == frozenset()


def settings_form(page: str) -> dict[str, str]:
    """What the settings form would send as shown (inputs with values, ticked boxes, the textarea)."""
    data: dict[str, object] = {}
    for name, value in re.findall(r'<input[^>]*\bname="([^"]+)"[^>]*\bvalue="([^"]*)"', page):
        if name == "material":
            data.setdefault("material", []).append(value)
        elif name != "csrf":
            data[name] = value
    if re.search(r'name="approval_required"[^>]*\bchecked', page):
        data["approval_required"] = "on"
    data["refused_commands"] = re.search(r'name="refused_commands"[^>]*>([^<]*)<', page).group(1)
    return data


def test_managers_change_approval_and_a_bad_upload_limit_is_refused_by_name(browsers, fleet):
    manager = browsers["manager"]
    page = manager.get("/settings").get_data(as_text=True)
    data = settings_form(page)
    assert "approval_required" not in data and "M502" in data["refused_commands"]
    assert fleet.app.lab.settings().approval_required is False

    assert manager.post("/settings", {**data, "approval_required": "on"}).status_code == 303
    lab = fleet.app.lab.settings()
    assert lab.approval_required is True
    assert lab.rules.to_dict()["material_limits"]["PLA"] == {"hotend_max_c": 240, "bed_max_c": 70}
    assert "M502" in lab.rules.refused_commands  # unchanged fields round-trip as shown

    page = manager.get("/settings").get_data(as_text=True)
    data = settings_form(page)
    assert data["approval_required"] == "on"
    refused = manager.post("/settings", {**data, "max_upload_bytes": "lots", "refused_commands": "M502 M777"})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert re.search(r'role="alert"[^>]*>[^<]*max_upload_bytes', text)
    assert re.search(r'id="max_upload_bytes"[^>]*aria-invalid="true"', text)
    assert 'value="lots"' in text  # what was typed stays in the form
    after = fleet.app.lab.settings()
    assert after == lab and "M777" not in after.rules.refused_commands  # nothing was saved

    assert manager.post("/settings", {**data, "max_upload_bytes": "0"}).status_code == 422


def test_managers_set_the_labs_time_zone_and_an_unknown_one_is_refused_by_name(browsers, fleet):
    manager = browsers["manager"]
    data = settings_form(manager.get("/settings").get_data(as_text=True))
    assert data["time_zone"] == "UTC"
    assert manager.post("/settings", {**data, "time_zone": "Europe/Paris"}).status_code == 303
    assert fleet.app.lab.settings().time_zone == "Europe/Paris"
    refused = manager.post("/settings", {**data, "time_zone": "Mars/Olympus"})
    assert refused.status_code == 422 and re.search(
        r'id="time_zone"[^>]*aria-invalid="true"', refused.get_data(as_text=True)
    )
    assert fleet.app.lab.settings().time_zone == "Europe/Paris"


def test_managers_change_refused_commands_and_material_limits(browsers, fleet):
    manager = browsers["manager"]
    data = settings_form(manager.get("/settings").get_data(as_text=True))
    data.update({"refused_commands": "M502, m500", "hotend.PLA": "230"})
    assert manager.post("/settings", data).status_code == 303
    rules = fleet.app.lab.settings().rules
    assert rules.refused_commands == frozenset({"M502", "M500"})
    assert rules.material_limits["PLA"].hotend_max_c == 230
    bad = manager.post("/settings", {**data, "bed.PLA": "999"})
    assert bad.status_code == 422 and "material_limits.PLA.bed_max_c" in bad.get_data(as_text=True)


def test_managers_set_the_plate_photos_limit_and_retention(browsers, fleet):
    manager = browsers["manager"]
    data = settings_form(manager.get("/settings").get_data(as_text=True))
    assert (data["snapshot_max_bytes"], data["snapshot_retention_days"]) == (str(2 * 1024 * 1024), "14")
    assert (
        manager.post(
            "/settings", {**data, "snapshot_max_bytes": "500000", "snapshot_retention_days": "3"}
        ).status_code
        == 303
    )
    lab = fleet.app.lab.settings()
    assert (lab.snapshot_max_bytes, lab.snapshot_retention_days) == (500_000, 3)
    bad = manager.post("/settings", {**data, "snapshot_retention_days": "forever"})
    assert bad.status_code == 422
    assert re.search(r'id="snapshot_retention_days"[^>]*aria-invalid="true"', bad.get_data(as_text=True))
    assert fleet.app.lab.settings() == lab


def test_members_get_403_from_the_settings(browsers, fleet):
    assert browsers["alice"].get("/settings").status_code == 403
    assert browsers["alice"].post("/settings", {"approval_required": "on"}).status_code == 403
    assert fleet.app.lab.settings().approval_required is False
