"""GET /printers/{id}/unfit: what a printer's owner reads about waiting jobs its profile cannot take."""

from __future__ import annotations

import pytest

from .test_enrollment import CAPS, as_printer
from .test_jobs import SMALL as PART
from .test_jobs import upload

SMALL = {"min_x": 0, "min_y": 0, "min_z": 0, "max_x": 180, "max_y": 180, "max_z": 180}

#: Extrudes from (5, 5) to (245, 205) and up to 215 mm: 240 x 200 x 215 mm of print (it stands on the bed).
TALL = (
    "M82\nG28\nG92 E0\nG1 Z0.2 F600\nG1 X5 Y5 F3000\nG1 X245 Y5 E2 F1200\nG1 X245 Y205 E4\n"
    "G1 Z215 F600\nG1 X5 Y205 E6 F1200\n"
)


@pytest.fixture(autouse=True)
def broker_address(fleet):
    from fleet.http_protocol import BrokerAddress

    fleet.app.enrollment.node_mqtt = BrokerAddress("fleet.lab", 18830, tls=False)


def enroll(api, name, volume, **profile):
    code = api["manager"].post("/api/v1/enroll-codes", json={}).get_json()["code"]
    response = api["anonymous"].post(
        "/api/v1/printers/enroll",
        json={"code": code, "name": name, "capabilities": {**CAPS, "volume": volume, **profile}},
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_small_printer_hears_which_jobs_need_more_and_nothing_about_whose(api):
    small = enroll(api, "Small", SMALL)
    other = enroll(api, "Other", SMALL)
    tall = upload(api["alice"], TALL, "alices-secret-name.gcode")
    assert tall.status_code == 201, tall.get_json()
    assert upload(api["alice"], PART).status_code == 201
    url = "/api/v1/printers/small/unfit"

    got = api["anonymous"].get(url, headers=as_printer(api, small["token"]))
    assert got.status_code == 200, got.get_json()
    assert got.get_json() == {
        "jobs": [
            {
                "job_id": tall.get_json()["jobs"][0]["id"],
                "reason": "240\u00d7200\u00d7215 mm needed, this profile gives 180\u00d7180\u00d7180 mm",
                "key": "too_small",
                "params": {"needed": "240\u00d7200\u00d7215 mm", "have": "180\u00d7180\u00d7180 mm"},
            }
        ]
    }
    assert "alice" not in got.get_data(as_text=True)

    assert api["anonymous"].get(url, headers=as_printer(api, other["token"])).status_code == 403
    assert api["alice"].get(url).status_code == 401
    assert api["manager"].get(url).status_code == 401
    assert api["anonymous"].get(url).status_code == 401


def test_a_job_another_printer_can_take_is_not_the_small_ones_concern(api):
    small = enroll(api, "Small", SMALL)
    assert upload(api["alice"], TALL).status_code == 201
    enroll(api, "Big", CAPS["volume"])
    got = api["anonymous"].get("/api/v1/printers/small/unfit", headers=as_printer(api, small["token"]))
    assert got.status_code == 200 and got.get_json() == {"jobs": []}


def test_the_client_reads_the_answer(api):
    from fleet.http_protocol import ProtocolError, decode_unfit

    assert decode_unfit({"jobs": [{"job_id": 3, "reason": "r"}]})[0].reason == "r"  # an older fleet's
    read = decode_unfit(
        {"jobs": [{"job_id": 3, "reason": "r", "key": "too_few_extruders", "params": {"tools": 2}}]}
    )
    assert (read[0].key, read[0].params) == ("too_few_extruders", {"tools": 2})
    with pytest.raises(ProtocolError, match=r"jobs\[0\] needs a text key"):
        decode_unfit({"jobs": [{"job_id": 3, "reason": "r", "key": "k", "params": {"x": [1]}}]})
    with pytest.raises(ProtocolError, match=r"jobs\[0\] needs an integer job_id"):
        decode_unfit({"jobs": [{"job_id": "3", "reason": "r"}]})
    with pytest.raises(ProtocolError, match="no 'jobs' list"):
        decode_unfit([])


def test_a_job_that_heats_the_chamber_waits_for_a_printer_with_one(api):
    """M141/M191 in the file: the job goes only to a printer whose profile has a heated chamber."""
    plain = enroll(api, "Plain", CAPS["volume"])
    sent = upload(api["alice"], "M141 S45\nM191 S45\nG1 X10 Y10 F3000\nG1 X20 Y10 E1\n", "abs-box.gcode")
    assert sent.status_code == 201, sent.get_json()
    job_id = sent.get_json()["jobs"][0]["id"]
    assert api["alice"].get(f"/api/v1/jobs/{job_id}").get_json()["analysis"]["chamber_temperature_c"] == 45.0
    got = api["anonymous"].get("/api/v1/printers/plain/unfit", headers=as_printer(api, plain["token"]))
    assert got.get_json()["jobs"] == [
        {
            "job_id": job_id,
            "reason": "it heats the chamber, and this profile has no heated chamber",
            "key": "no_heated_chamber",
            "params": {},
        }
    ]
    queue = api["alice"].get("/api/v1/jobs/mine").get_json()
    assert "no printer that could otherwise print it has a heated chamber" in str(queue)
    enroll(api, "Warm", CAPS["volume"], heated_chamber=True)
    got = api["anonymous"].get("/api/v1/printers/plain/unfit", headers=as_printer(api, plain["token"]))
    assert got.get_json() == {"jobs": []}, "another printer can take it: not this one's concern"
