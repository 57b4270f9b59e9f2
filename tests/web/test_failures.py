"""Service errors in the dashboard's languages, while the API keeps its English messages."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

import fleet
from fleet.errors import Conflict, Forbidden, Invalid, NotFound
from fleet.states import JobState, check_job_transition
from fleet.web.failures import describe
from fleet.web.i18n import Catalogue

SOURCE = Path(fleet.__file__).parent
KEY_RE = re.compile(r"\bkey=(f?)\"([^\"]+)\"")
#: Keys built with an f-string, and every value they take.
BUILT_KEYS = {"job_cannot_{command.value}": {"job_cannot_pause", "job_cannot_resume"}}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


def keys_raised() -> set[str]:
    """Every error key the fleet's code gives an error (``key="..."``)."""
    found: set[str] = set()
    for path in SOURCE.rglob("*.py"):
        for is_f, key in KEY_RE.findall(path.read_text("utf-8")):
            if is_f:
                assert key in BUILT_KEYS, f"{path}: list the values of key=f{key!r} in BUILT_KEYS"
                found |= BUILT_KEYS[key]
            else:
                found.add(key)
    return found


def test_every_raised_key_has_english_and_french_texts(catalogue: Catalogue) -> None:
    keys = keys_raised()
    assert {"managers_only", "job_not_cancellable", "copies_range", "bed_not_waiting"} <= keys
    for key in keys:
        for lang in ("en", "fr"):
            assert catalogue.messages[lang].get(f"err.{key}"), f"err.{key} is missing from {lang}.json"


def test_french_texts_use_the_same_placeholders(catalogue: Catalogue) -> None:
    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    for key, english in catalogue.messages["en"].items():
        french = catalogue.messages["fr"].get(key)
        assert french is not None, f"{key} has no French text"
        assert fields(french) == fields(english), key


def test_a_keyed_error_reads_in_french_and_its_api_body_stays_english(catalogue: Catalogue) -> None:
    error = Conflict(
        "job 7 is already done; there is nothing to cancel",
        key="job_not_cancellable",
        params={"id": 7, "state": "done"},
    )
    shown = describe(error, catalogue, "fr", {})
    assert (shown.text, shown.lang) == ("Le travail n°7 est déjà terminé : il n'y a rien à annuler.", "fr")
    assert describe(error, catalogue, "en", {}).text == "Job #7 is already done: there is nothing to cancel."
    assert error.to_dict() == {
        "error": "conflict",
        "message": "job 7 is already done; there is nothing to cancel",
    }


def test_errors_without_a_key_are_known_by_code_and_field_or_shown_in_english(catalogue: Catalogue) -> None:
    missing = NotFound("there is no job with id 12", field="job_id")
    assert describe(missing, catalogue, "fr", {"job_id": 12}).text == "Il n'y a pas de travail n°12."

    with pytest.raises(Conflict) as refused:
        check_job_transition(JobState.DONE, JobState.QUEUED)
    assert (
        describe(refused.value, catalogue, "fr", {}).text == "Un travail terminé ne peut pas devenir en file."
    )

    unknown = Invalid("priority must be a whole number from -100 to 100", field="priority")
    shown = describe(unknown, catalogue, "fr", {})
    assert (shown.text, shown.lang) == (unknown.message, "en"), "said in English, and marked so"


def test_a_catalogue_text_missing_a_value_falls_back_to_the_message(catalogue: Catalogue) -> None:
    error = Forbidden("this job belongs to another member", key="job_not_yours")  # no id given
    assert describe(error, catalogue, "fr", {}).text == "this job belongs to another member"
