"""Cache folders kept by recent use: a hit marks its file used, a write prunes the oldest.

The mtime is the mark, so the order survives a restart and needs no index file.
"""

from __future__ import annotations

import os
from pathlib import Path


def touched(path: Path) -> bool:
    """Whether `path` is there; if so it is marked recently used (pruned last)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def prune(folder: Path, pattern: str, keep: int) -> None:
    """Remove all but the `keep` most recently used files of `folder` matching `pattern`."""
    files = sorted(folder.glob(pattern), key=_mtime)
    for old in files[:-keep]:
        old.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # pruned by another process meanwhile
        return 0.0
