"""The plugin's French catalogue: every marked string has a text, and the compiled .mo matches the .po."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

import octoprint_crowdfab

PLUGIN = Path(octoprint_crowdfab.__file__).parent
#: Where OctoPrint looks for a plugin's texts: <plugin>/translations/<locale>/LC_MESSAGES/messages.{po,mo}
#: (the .mo for the server-rendered templates, the .po for the JavaScript catalogue it serves).
CATALOGUE = PLUGIN / "translations" / "fr" / "LC_MESSAGES"
#: How strings are marked: _() in the Jinja2 templates, gettext() in the JavaScript and the Python.
SOURCES = [
    ("templates/*.jinja2", "jinja2.ext:babel_extract"),
    ("static/js/*.js", "javascript"),
    ("*.py", "python"),
]


def marked_strings() -> dict[str, list[str]]:
    """Every string marked for translation in the plugin, with where it is marked."""
    found: dict[str, list[str]] = {}
    for pattern, method in SOURCES:
        for path in sorted(PLUGIN.glob(pattern)):
            for lineno, message, _comments, _context in extract_from_file(
                method, str(path), keywords={"_": None, "gettext": None}
            ):
                assert isinstance(message, str), f"{path.name}:{lineno}: plural forms are not used here"
                found.setdefault(message, []).append(f"{path.relative_to(PLUGIN)}:{lineno}")
    return found


def po_messages() -> dict[str, str]:
    with (CATALOGUE / "messages.po").open("rb") as f:
        catalog = read_po(f, locale="fr")
    return {str(m.id): str(m.string) for m in catalog if m.id}


def test_the_sources_mark_strings_the_way_the_extractor_sees_them() -> None:
    found = marked_strings()
    # One of each kind, so a broken extraction cannot pass the completeness check below by finding nothing.
    for expected in ("Link to the fleet", "Send to fablab queue", "A fleet job arrived", "Fablab"):
        assert expected in found, f"{expected!r} is no longer marked for translation"


def test_every_marked_string_has_a_french_text() -> None:
    french = po_messages()
    missing = {m: where for m, where in marked_strings().items() if not french.get(m)}
    assert not missing, f"add these to {CATALOGUE / 'messages.po'} and compile it: {missing}"


def test_placeholders_survive_translation() -> None:
    for source, text in po_messages().items():
        for name in ("%(id)s", "%(path)s", "%(file)s", "%(state)s", "%(url)s", "%(time)s"):
            assert (name in source) == (name in text), f"{name} in {source!r} vs {text!r}"


def test_the_compiled_catalogue_matches_the_po() -> None:
    mo = CATALOGUE / "messages.mo"
    if not mo.is_file():
        pytest.fail(f"{mo} is missing: run pybabel compile -d {PLUGIN / 'translations'}")
    with mo.open("rb") as f:
        compiled = read_mo(f)
    in_mo = {str(m.id): str(m.string) for m in compiled if m.id}
    assert in_mo == po_messages(), (
        f"{mo.name} is out of date: run pybabel compile -d {PLUGIN / 'translations'}"
    )
