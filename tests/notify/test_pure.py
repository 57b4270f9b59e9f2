"""The pure parts of notifications: signatures, texts, which moves raise what, backoff, redaction, URLs."""

from __future__ import annotations

import string

import pytest

from fleet.errors import Invalid
from fleet.notify.channels import redact, scrub
from fleet.notify.events import ALL_KINDS, MANAGER_KINDS, EventKind, job_move_kind, parse_kinds
from fleet.notify.signing import SignatureError, sign, verify
from fleet.notify.texts import LANGUAGES, TEXTS, render
from fleet.notify.webhooks import check_webhook_url
from fleet.notify.worker import backoff
from fleet.states import JobState as J

SECRET = "whsec_test"
BODY = b'{"id":"job:1:job_done:3>w1"}'


def test_a_signature_verifies_and_any_change_or_a_stale_time_is_refused() -> None:
    header = sign(SECRET, BODY, 1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify(SECRET, BODY, header, now=1_700_000_100) == 1_700_000_000
    refusals = {
        "the signature does not match": [
            (SECRET, BODY + b" ", header, 1_700_000_000),
            ("whsec_other", BODY, header, 1_700_000_000),
            (SECRET, BODY, header.replace("t=1700000000", "t=1700000001"), 1_700_000_000),
        ],
        "past the tolerance": [
            (SECRET, BODY, header, 1_700_000_301),
            (SECRET, BODY, header, 1_699_999_699),
        ],
        "must hold t=": [(SECRET, BODY, "", 0), (SECRET, BODY, "v1=abc", 0), (SECRET, BODY, "t=x,v1=abc", 0)],
    }
    for words, cases in refusals.items():
        for secret, body, given, now in cases:
            with pytest.raises(SignatureError, match=words):
                verify(secret, body, given, now=now)


def test_every_kind_reads_in_every_language_with_the_same_values() -> None:
    fields = string.Formatter()
    for kind in EventKind:
        wanted = None
        for language in LANGUAGES:
            title, body = TEXTS[language][kind]
            names = {name for _, name, _, _ in fields.parse(title + body) if name}
            wanted = names if wanted is None else wanted
            assert names == wanted, (kind, language)
    data = {"job_id": 7, "filename": "benchy.gcode", "printer_name": "MK4", "reason": "thermal runaway"}
    assert render(EventKind.JOB_FAILED, data, "fr") == (
        "Votre impression a échoué",
        "benchy.gcode (tâche 7) a échoué sur MK4 : thermal runaway",
    )
    assert render(EventKind.JOB_FAILED, {}, "de")[1] == "? (job ?) failed on ?: ?"  # English, gaps shown


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        (J.ASSIGNED, J.PRINTING, EventKind.JOB_STARTED),
        (J.PAUSED, J.PRINTING, None),  # a resume is no new start
        (J.PRINTING, J.DONE, EventKind.JOB_DONE),
        (J.UNKNOWN, J.DONE, EventKind.JOB_DONE),
        (J.PRINTING, J.FAILED, EventKind.JOB_FAILED),
        (J.SUBMITTED, J.AWAITING_APPROVAL, EventKind.JOB_NEEDS_APPROVAL),
        (J.AWAITING_APPROVAL, J.QUEUED, EventKind.JOB_APPROVED),
        (J.AWAITING_APPROVAL, J.CANCELLED, EventKind.JOB_REFUSED),
        (J.QUEUED, J.CANCELLED, None),
        (J.SUBMITTED, J.QUEUED, None),
        (J.QUEUED, J.ASSIGNED, None),
    ],
)
def test_which_job_moves_raise_an_event(before: J, after: J, kind: EventKind | None) -> None:
    assert job_move_kind(before, after) is kind


def test_kinds_are_checked_and_the_lab_s_are_for_managers() -> None:
    assert parse_kinds(["job_done", "job_started", "job_done"], manager=False) == (
        EventKind.JOB_STARTED,
        EventKind.JOB_DONE,
    )
    assert parse_kinds([k.value for k in MANAGER_KINDS], manager=True) == MANAGER_KINDS
    with pytest.raises(ValueError, match="only managers"):
        parse_kinds(["spool_low"], manager=False)
    with pytest.raises(ValueError, match="'nope' is no event kind"):
        parse_kinds(["nope"], manager=True)
    with pytest.raises(ValueError, match="must be a list"):
        parse_kinds("job_done", manager=True)
    assert len(ALL_KINDS) == len(EventKind)


def test_backoff_doubles_up_to_its_cap_with_at_most_a_tenth_of_jitter() -> None:
    assert [backoff(n, 30, 3600) for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]
    assert backoff(1, 30, 3600, jitter=1.0) == pytest.approx(33)


def test_channel_urls_are_shown_and_logged_without_their_secrets() -> None:
    assert redact("mailto://user:pw@smtp.lab.org:587/?to=a@b") == "mailto://****@smtp.lab.org:587/…"
    assert redact("ntfys://tk_secret@ntfy.sh/alerts") == "ntfys://****@ntfy.sh/…"
    url = "json://hooks.lab.org/p/tok3nvalue?:X-Key=k3yvalue"
    text = f"failed to send to {url} with tok3nvalue and k3yvalue"
    cleaned = scrub(text, url)
    assert "tok3nvalue" not in cleaned and "k3yvalue" not in cleaned and "json://hooks.lab.org/…" in cleaned


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://lab.org/x", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http://"),
        ("http://user:pw@lab.org/x", "must not hold a user or password"),
        ("https:///x", "must name a host"),
        ("http://lab.org/x#frag", "must not have a #fragment"),
        ("http://lab.org:99999/x", "not a valid URL"),
        ("http://lab.org/" + "x" * 2001, "at most 2000 characters"),
        (42, "must be an http:// or https:// URL"),
    ],
)
def test_webhook_urls_are_only_plain_http_or_https(url: object, words: str) -> None:
    with pytest.raises(Invalid, match=words):
        check_webhook_url(url)
    assert (
        check_webhook_url(" https://hooks.lab.org:8443/crowdfab?x=1 ")
        == "https://hooks.lab.org:8443/crowdfab?x=1"
    )
