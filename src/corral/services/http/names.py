"""Node names in request bodies: a hostlist string or a list of names."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from corral.inventory.hostlists import expand

Names = Annotated[str, Field(max_length=4096)] | Annotated[list[str], Field(max_length=100_000)]
NAMES = "A hostlist (`n[001-004]`) or a list of node names"


def names_list(names: str | list[str]) -> list[str]:
    """The node names a body's `names` field stands for (a hostlist expanded)."""
    return expand(names) if isinstance(names, str) else names
