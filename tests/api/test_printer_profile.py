"""The printer profile (bed shape, heated bed and chamber, extruders): enrolled, and shown by the API."""

from __future__ import annotations

import pytest

from fleet.lending import decode_lending

from .test_enrollment import CAPS


def enroll_with(api, capabilities, name="Delta"):
    code = api["manager"].post("/api/v1/enroll-codes", json={}).get_json()["code"]
    return code, api["anonymous"].post(
        "/api/v1/printers/enroll", json={"code": code, "name": name, "capabilities": capabilities}
    )


@pytest.fixture(autouse=True)
def broker_address(fleet):
    from fleet.http_protocol import BrokerAddress

    fleet.app.enrollment.node_mqtt = BrokerAddress("fleet.lab", 18830, tls=False)


def test_an_enrolled_printer_shows_its_profile(api):
    profile = {"bed_shape": "circular", "heated_bed": False, "heated_chamber": True, "extruders": 2}
    _, response = enroll_with(api, {**CAPS, **profile})
    assert response.status_code == 201, response.get_json()

    shown = api["alice"].get("/api/v1/printers/delta").get_json()
    assert {key: shown[key] for key in profile} == profile


def test_a_printer_that_did_not_say_shows_null(api):
    _, response = enroll_with(api, CAPS, name="Plain")
    assert response.status_code == 201
    shown = api["alice"].get("/api/v1/printers/plain").get_json()
    assert [shown[k] for k in ("bed_shape", "heated_bed", "heated_chamber", "extruders")] == [None] * 4


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("bed_shape", "hexagonal", "capabilities.bed_shape must be one of: rectangular, circular"),
        ("heated_bed", "yes", "capabilities.heated_bed must be true, false or null"),
        ("heated_chamber", 1, "capabilities.heated_chamber must be true, false or null"),
        ("extruders", 0, "capabilities.extruders must be a whole number from 1 to 16"),
        ("extruders", True, "capabilities.extruders must be a whole number from 1 to 16"),
        ("extruders", 2.5, "capabilities.extruders must be a whole number from 1 to 16"),
    ],
)
def test_a_bad_profile_names_the_field_and_keeps_the_code(api, key, value, words):
    code, response = enroll_with(api, {**CAPS, key: value})
    assert response.status_code == 422
    body = response.get_json()
    assert body["message"] == words and body["field"] == f"capabilities.{key}"
    again = api["anonymous"].post(
        "/api/v1/printers/enroll", json={"code": code, "name": "x", "capabilities": CAPS}
    )
    assert again.status_code == 201


def test_a_lent_printer_shows_its_owners_terms(api, fleet):
    _, response = enroll_with(api, CAPS, name="Garage")
    assert response.status_code == 201
    assert api["alice"].get("/api/v1/printers/garage").get_json()["lending"] is None
    terms = {
        "time_zone": "Europe/Paris",
        "windows": [{"days": ["sat", "sun"], "start": "08:00", "end": "20:00"}],
        "materials": ["PLA"],
    }
    fleet.app.store.update_printer("garage", lending=decode_lending(terms))
    assert api["alice"].get("/api/v1/printers/garage").get_json()["lending"] == terms
