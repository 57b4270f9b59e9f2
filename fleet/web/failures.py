"""The fleet's errors in the page's language: the dashboard's side of :class:`fleet.errors.FleetError`.

The service raises English messages (the API sends them as they are). An error that carries a
``key`` is shown as the catalogue's ``err.<key>``, filled with its ``params``; errors from parts that
name no key are recognised by what the API also publishes about them, their ``code`` and ``field``
(or a refused state change's ``details``). Anything else is shown in English, marked as such.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import FleetError
from .i18n import Catalogue

#: Errors without a key, by (code, field): the catalogue key that says the same.
BY_FIELD = {
    ("not_found", "job_id"): "no_job",
    ("not_found", "printer_id"): "no_printer",
    ("too_large", "file"): "too_large",
}
#: Parameters whose values are job or printer states: shown in the page's words for that state.
STATE_PARAMS = {
    "state": ("job.state.",),
    "from": ("job.state.",),
    "to": ("job.state.",),
    "printer_state": ("js.state.",),
}


@dataclass(frozen=True)
class Shown:
    """An error's text for a page, and the language it is in (English when no translation fits)."""

    text: str
    lang: str


def describe(error: FleetError, catalogue: Catalogue, lang: str, context: dict[str, Any]) -> Shown:
    """``error`` in ``lang``; ``context`` adds values the error does not carry (the page's job id...)."""
    key, params = _key_of(error)
    entry = f"err.{key}" if key is not None else None
    if entry is None or not catalogue.has(entry):
        return Shown(error.message, "en")
    values = {**context, **params}
    for name, prefixes in STATE_PARAMS.items():
        if isinstance(values.get(name), str):
            values[name] = _state_text(catalogue, lang, prefixes, values[name])
    template = catalogue.text(lang, entry)
    try:
        needed = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError:
        needed = {""}  # a malformed text: never shown half-filled
    if not needed <= set(values):
        # A catalogue text naming a value this error lacks: the English message still says it all.
        return Shown(error.message, "en")
    return Shown(template.format(**values), lang)


def _key_of(error: FleetError) -> tuple[Optional[str], dict[str, Any]]:
    if error.key is not None:
        return error.key, error.params
    details = error.details if isinstance(error.details, dict) else {}
    if error.code == "conflict" and {"from", "to"} <= set(details):
        return "transition", {"from": details["from"], "to": details["to"]}
    return BY_FIELD.get((error.code, error.field or "")), {}


def _state_text(catalogue: Catalogue, lang: str, prefixes: tuple[str, ...], state: str) -> str:
    for prefix in prefixes:
        if catalogue.has(prefix + state):
            return catalogue.text(lang, prefix + state)
    return state
