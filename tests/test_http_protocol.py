"""The HTTP contract's payloads: what each side sends decodes to the same values, and every malformed
answer is refused naming its field (table-driven, like the MQTT protocol's tests)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fleet import http_protocol as h
from fleet.geometry import Box
from fleet.protocol import Capabilities, ProtocolError

ANSWER = h.EnrollmentAnswer(
    "prusa-mk4", "cfp_secret", h.BrokerAddress("fleet.lab", 18830, "prusa-mk4", "pw", tls=True)
)


def test_the_enrollment_answer_round_trips_and_keeps_local_paths_off_the_wire() -> None:
    assert h.EnrollmentAnswer.from_json(ANSWER.to_json()) == ANSWER
    local = h.BrokerAddress("h", 8883, tls=True, ca_file="/etc/ca.pem")
    assert "ca_file" not in local.to_json()
    assert "pw" not in repr(ANSWER)


def test_defaults_of_an_older_fleet_answer() -> None:
    """A fleet that leaves out port and tls means 1883 and plain MQTT."""
    answer = h.EnrollmentAnswer.from_json({"printer_id": "p-1", "token": "t", "mqtt": {"host": "h"}})
    assert answer.mqtt == h.BrokerAddress("h", 1883)


def answer_with(path: str, value: Any) -> dict[str, Any]:
    data = ANSWER.to_json()
    *parents, key = path.split(".")
    target = data
    for parent in parents:
        target = target[parent]
    if value is KeyError:
        del target[key]
    else:
        target[key] = value
    return data


@pytest.mark.parametrize(
    "path, value, field",
    [
        ("printer_id", "Prusa MK4", "printer_id"),
        ("printer_id", "x" * 49, "printer_id"),
        ("printer_id", KeyError, "printer_id"),
        ("token", "", "token"),
        ("token", 7, "token"),
        ("mqtt", "fleet.lab:1883", "mqtt"),
        ("mqtt.host", KeyError, "mqtt.host"),
        ("mqtt.port", 70000, "mqtt.port"),
        ("mqtt.port", True, "mqtt.port"),
        ("mqtt.port", "1883", "mqtt.port"),
        ("mqtt.username", 1, "mqtt.username"),
        ("mqtt.password", "", "mqtt.password"),
        ("mqtt.tls", "yes", "mqtt.tls"),
    ],
)
def test_a_malformed_enrollment_answer_names_its_field(path: str, value: Any, field: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        h.EnrollmentAnswer.from_json(answer_with(path, value))
    assert refused.value.field == field and field in refused.value.message


@pytest.mark.parametrize("data", [None, [], "answer", 3])
def test_an_answer_that_is_not_an_object_is_refused(data: Any) -> None:
    with pytest.raises(ProtocolError, match="JSON object"):
        h.EnrollmentAnswer.from_json(data)


def test_the_enrollment_request_round_trips_and_names_a_bad_field() -> None:
    request = h.EnrollRequest(
        "7KQP-M2XD-9HWC", "Prusa MK4", Capabilities(Box.of_size(180, 180, 180), 0.4, "PLA")
    )
    assert h.EnrollRequest.from_json(request.to_json()) == request
    with pytest.raises(ProtocolError) as refused:
        h.EnrollRequest.from_json({"code": "x", "name": "n", "capabilities": []})
    assert refused.value.field == "capabilities"


@pytest.mark.parametrize(
    "submission, form",
    [
        (h.JobSubmission(), {"copies": "1"}),
        (
            h.JobSubmission(3, "PETG", "for the robot"),
            {"copies": "3", "material": "PETG", "note": "for the robot"},
        ),
        (h.JobSubmission(plate=4), {"copies": "1", "plate": "4"}),
    ],
)
def test_the_submission_form(submission: h.JobSubmission, form: dict[str, str]) -> None:
    assert submission.form() == form


@pytest.mark.parametrize("key", ["abc", 'a"b', "a\\b", '\\"', "9f8e-7d6c"])
def test_idempotency_keys_survive_the_header(key: str) -> None:
    quoted = h.quote_idempotency_key(key)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert h.unquote_idempotency_key(quoted) == key
    assert h.unquote_idempotency_key(key.replace('"', "")) == key.replace('"', "")  # a bare key as is


@pytest.mark.parametrize("raw", ['"', '"abc', '"a"b"', '"a\\nb"', '"a\\'])
def test_a_badly_quoted_idempotency_key_is_refused(raw: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        h.unquote_idempotency_key(raw)
    assert refused.value.field == h.IDEMPOTENCY_KEY


def test_paths() -> None:
    assert h.ENROLL == "/api/v1/printers/enroll"
    assert h.job_file_path("p-1", 7) == "/api/v1/printers/p-1/jobs/7/file"
    assert h.job_cancel_path(7) == "/api/v1/jobs/7/cancel"


# -- the contract's paths are the ones the fleet serves ---------------------------------------------

#: Every path a node, the plugin or the command line reaches, with the method it uses.
NODE_FACING = [
    ("GET", h.HEALTH),
    ("GET", h.OPENAPI),
    ("POST", h.ENROLL),
    ("GET", h.job_file_path("p-1", 7)),
    ("POST", h.JOBS),
    ("GET", h.JOBS),
    ("GET", h.MY_JOBS),
    ("GET", h.QUEUE),
    ("GET", h.job_path(7)),
    ("POST", h.job_cancel_path(7)),
]


def _documented(document: dict[str, Any], method: str, path: str) -> bool:
    """Whether the document has ``method path`` (templates such as ``/jobs/{job_id}`` match ids)."""
    server = document["servers"][0]["url"]
    if not path.startswith(server + "/"):
        return False
    rel = path[len(server) :]
    for template, operations in document["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), rel) and method.lower() in operations:
            return True
    return False


@pytest.mark.parametrize(("method", "path"), NODE_FACING)
def test_each_node_facing_path_is_served_and_documented(app: Any, method: str, path: str) -> None:
    """The route exists under that path (Flask routes it) and the served document describes it."""
    served = app.test_client().get(h.OPENAPI)
    assert served.status_code == 200
    document = served.get_json()
    assert document["servers"] == [{"url": h.API_PREFIX}]
    assert _documented(document, method, path), f"{method} {path} is not in the served document"
    rule, _ = app.url_map.bind("fleet.test").match(path, method=method, return_rule=True)
    assert rule.rule.startswith(h.API_PREFIX + "/")


def test_a_path_not_in_the_contract_is_not_documented(app: Any) -> None:
    """The check above can fail: a misspelt path is neither served nor documented."""
    document = app.test_client().get(h.OPENAPI).get_json()
    assert not _documented(document, "GET", f"{h.API_PREFIX}/printers/p-1/jobs/7/files")
    assert not _documented(document, "DELETE", h.ENROLL)


def test_the_fleet_reads_the_request_the_node_sends() -> None:
    """One definition: the fleet's enrollment shape turns the node's body into the same value."""
    from fleet.api.shapes.printers import Enroll

    sent = h.EnrollRequest(
        "7KQP-M2XD-9HWC", "Prusa MK4", Capabilities(Box.of_size(250, 210, 220), 0.6, "PETG")
    )
    assert Enroll.parse(sent.to_json()).value() == sent
    unknown = h.EnrollRequest("7KQP-M2XD-9HWC", "Mini", Capabilities(material="PLA"))
    assert unknown.to_json()["capabilities"] == {"material": "PLA"}  # what the node does not know is left out
