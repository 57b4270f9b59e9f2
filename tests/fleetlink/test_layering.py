"""The MQTT link talks to the fleet's services only: never to the store behind them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fleet

LINK_MODULES = ["fleetlink.py", "dispatches.py"]


@pytest.mark.parametrize("name", LINK_MODULES)
def test_the_link_never_reaches_the_store(name: str) -> None:
    source = Path(fleet.__file__).parent / name
    tree = ast.parse(source.read_text(), str(source))
    reaches = [
        node.lineno for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "store"
    ]
    imports = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "store"
    ]
    assert reaches == [] and imports == [], f"{name} uses the store at lines {reaches + imports}"
