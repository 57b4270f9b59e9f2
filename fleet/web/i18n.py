"""The dashboard's own message catalogue: one JSON file of keys → texts per language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

FOLDER = Path(__file__).parent / "translations"
DEFAULT = "en"


class Catalogue:
    """Texts by language and key; a key missing from a language falls back to English, then to itself."""

    def __init__(self, messages: dict[str, dict[str, str]]) -> None:
        if DEFAULT not in messages:
            raise ValueError(f"the catalogue needs the {DEFAULT!r} texts")
        self.messages = messages

    @classmethod
    def load(cls, folder: Path = FOLDER) -> Catalogue:
        return cls({p.stem: json.loads(p.read_text("utf-8")) for p in sorted(folder.glob("*.json"))})

    @property
    def languages(self) -> list[str]:
        return sorted(self.messages)

    def has(self, key: str) -> bool:
        """Whether ``key`` is a known text (every key has its English text)."""
        return key in self.messages[DEFAULT]

    def text(self, lang: str, key: str, **values: Any) -> str:
        message = self.messages.get(lang, {}).get(key) or self.messages[DEFAULT].get(key) or key
        return message.format(**values) if values else message

    def prefixed(self, lang: str, prefix: str) -> dict[str, str]:
        """Every text whose key starts with ``prefix`` (what the page's script needs), by key."""
        keys = [k for k in self.messages[DEFAULT] if k.startswith(prefix)]
        return {k: self.text(lang, k) for k in keys}

    def choose(self, cookie: Optional[str], best_accepted: Optional[str]) -> str:
        """The language: the cookie's if known, else the browser's best match, else English."""
        if cookie in self.messages:
            return str(cookie)
        if best_accepted in self.messages:
            return str(best_accepted)
        return DEFAULT
