"""The plugin's store of members' fleet tokens: one per OctoPrint user, private to OctoPrint's account."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from fleet.client import FleetRequestError
from octoprint_crowdfab.signin import MemberTokens, sign_in, token_label


def test_tokens_are_kept_per_user_in_a_private_file(tmp_path: Path) -> None:
    kept = MemberTokens(tmp_path / "data" / "member_tokens.json")
    assert kept.get("ada") is None
    kept.put("ada", "cfm_a")
    kept.put("bob", "cfm_b")
    kept.forget("ada")
    again = MemberTokens(kept.path)  # as after a restart
    assert (again.get("ada"), again.get("bob")) == (None, "cfm_b")
    assert kept.path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"ada": 3}'])
def test_an_unreadable_file_signs_everyone_out_without_failing(tmp_path: Path, text: str) -> None:
    path = tmp_path / "member_tokens.json"
    path.write_text(text)
    kept = MemberTokens(path)
    assert kept.get("ada") is None
    kept.put("bob", "cfm_b")
    assert MemberTokens(path).get("bob") == "cfm_b"


def test_users_signing_in_at_once_all_keep_their_tokens(tmp_path: Path) -> None:
    kept = MemberTokens(tmp_path / "member_tokens.json")
    threads = [threading.Thread(target=kept.put, args=(f"user{i}", f"cfm_{i}")) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert all(kept.get(f"user{i}") == f"cfm_{i}" for i in range(8))


def test_the_label_names_the_user_and_the_printer() -> None:
    assert token_label("ada", "mini-1") == "OctoPrint user ada on printer mini-1"


def test_a_sign_in_without_password_or_code_is_refused_before_any_call() -> None:
    with pytest.raises(FleetRequestError, match="name and password, or a link code") as refused:
        sign_in("http://127.0.0.1:9", "label", name="ada")
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("status", "details", "words"),
    [
        (401, {"reason": "used"}, "this link code was already used: a code works once"),
        (401, {"reason": "expired"}, "this link code has expired"),
        (401, {"reason": "unknown"}, "the fleet does not know this link code"),
        (401, None, "wrong name or password"),
        (429, {"retry_after_s": 30}, "too many failed tries from this address: wait 30 s"),
        (422, None, "the fleet answered HTTP 422: label must be text"),  # anything else: the fleet's words
    ],
)
def test_a_refused_sign_in_is_told_in_the_plugins_words(status: int, details: object, words: str) -> None:
    """Each refusal its own message, from what the fleet says it is (marked for OctoPrint's catalogue)."""
    from octoprint_crowdfab import sign_in_refusal

    refusal = FleetRequestError("the fleet answered HTTP 422: label must be text", status, details)
    assert words in sign_in_refusal(refusal)
