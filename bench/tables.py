"""How the benchmarks print their figures: plain text tables, for a terminal and a commit message."""

from __future__ import annotations


def print_header(header: str) -> None:
    """Print a table's column titles and the rule under them, as wide as the titles."""
    print(header)
    print("-" * len(header))
