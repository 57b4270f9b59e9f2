"""The HTTP contract's payloads: what each side sends decodes to the same values, and every malformed
answer is refused naming its field (table-driven, like the MQTT protocol's tests)."""

from __future__ import annotations

from typing import Any

import pytest

from fleet import http_protocol as h
from fleet.protocol import ProtocolError

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
    request = h.EnrollRequest("7KQP-M2XD-9HWC", "Prusa MK4", {"material": "PLA"})
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
