"""Files under CORRAL_HOME that hold secrets are 0600, whatever the directory's mode.

A CORRAL_HOME that existed before corral (made 0755 by a package, a config
manager or by hand) lets any local user list it; the files themselves must
still be readable by their owner only. The mode is set when a file is created
(never 0644 for a moment) and corrected on open for files an older corral made.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

PRIVATE = 0o600


def make_private(path: Path) -> None:
    """Drop every group and other permission bit of `path`, if it exists."""
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)


def create_private(path: Path) -> None:
    """Make `path` exist with mode 0600 (an existing file is made private, not truncated)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE)
    os.close(fd)
    make_private(path)


def sqlite_files(database: Path) -> list[Path]:
    """The database and the journal files SQLite keeps beside it."""
    return [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]


def admin_token(path: Path, create: bool = False) -> str | None:
    """The admin API token kept at `path` (0600); made when `create` and missing.

    Here, beside the file modes, and not in `corral.app`: the CLI reads it for
    `--server` without loading the database library.
    """
    if path.exists():
        make_private(path)  # one an older corral or a hand left readable
        return path.read_text().strip()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token
