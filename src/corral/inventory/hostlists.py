"""Hostlist ranges (`node[001-128]`, `rack[1-2]-n[01-16]`, comma lists).

Thin wrapper over python-hostlist, the library Slurm sites use, so corral reads
ranges exactly as the rest of an HPC site does.
"""

from __future__ import annotations

import hostlist

from corral.inventory.errors import InventoryError

MAX_EXPANSION = 1_000_000


def expand(pattern: str) -> list[str]:
    """All names a hostlist pattern stands for, in order, without duplicates."""
    text = pattern.strip()
    if not text:
        raise InventoryError("empty node list: give names like n001 or n[001-016]")
    try:
        names: list[str] = hostlist.expand_hostlist(text, allow_duplicates=False)
    except hostlist.BadHostlist as exc:
        raise InventoryError(f"{pattern!r} is not a valid hostlist: {exc}") from exc
    if len(names) > MAX_EXPANSION:
        raise InventoryError(f"{pattern!r} expands to {len(names)} names (at most {MAX_EXPANSION})")
    return names


def compress(names: list[str]) -> str:
    """The shortest hostlist for `names` (for display)."""
    result: str = hostlist.collect_hostlist(names)
    return result
