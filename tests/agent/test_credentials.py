"""The agent's saved enrollment is the contract's answer on disk: read back strictly, or refused by name."""

from __future__ import annotations

import json

import pytest

from fleet.agent import AgentError, load_credentials, save_credentials
from fleet.http_protocol import BrokerAddress, EnrollmentAnswer

ANSWER = EnrollmentAnswer("mini-1", "cfp_secret", BrokerAddress("fleet.lab", 18830, "mini-1", "pw", tls=True))


def test_the_saved_file_is_the_enrollment_answer(tmp_path):
    path = save_credentials(tmp_path, ANSWER)
    assert json.loads(path.read_text()) == ANSWER.to_json()
    assert load_credentials(tmp_path) == ANSWER


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"printer_id": "Not An Id"}, "printer_id"),
        ({"token": ""}, "token"),
        ({"mqtt": {"host": "fleet.lab", "port": 70000}}, "mqtt.port"),
        ({"mqtt": None}, "mqtt"),
    ],
)
def test_a_damaged_file_says_what_is_wrong_and_what_to_do(tmp_path, change, names):
    path = save_credentials(tmp_path, ANSWER)
    path.write_text(json.dumps({**ANSWER.to_json(), **change}))
    with pytest.raises(AgentError) as refused:
        load_credentials(tmp_path)
    assert names in str(refused.value) and "enroll again" in str(refused.value)
