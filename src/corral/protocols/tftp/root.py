"""Map a requested TFTP filename to something to serve, safely.

Why: the filename is the one attacker-controlled string a TFTP server acts on.
All of the policy lives here: normalisation (`\\` as `/`, leading `/`, `.`,
`//`), refusal of `..` escapes, symlinks resolving outside the root, and
anything that is not a regular file. Dynamic providers (per-node files,
rendered on demand; MAAS's `match_path` idea) are asked first.

This module reads the filesystem but holds no socket, clock or global state.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from corral.protocols.tftp.files import FileSource, OpenFileSource
from corral.protocols.tftp.packets import ErrorCode, TftpError

Address = tuple[str, int]


class FileProvider(Protocol):
    """A source of dynamic files, consulted before the filesystem."""

    def match(self, path: str) -> bool:
        """Whether `path` (normalised, no leading `/`) belongs to this provider."""
        ...

    def open(self, path: str, client: Address) -> FileSource | None:
        """The file for this client, or None for "not found"; may raise TftpError."""
        ...


def normalize(filename: str) -> str:
    """The relative path a request means. Raises TftpError(ACCESS_VIOLATION) on escapes."""
    parts: list[str] = []
    for part in filename.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise TftpError(ErrorCode.ACCESS_VIOLATION, "path escapes the root")
            parts.pop()
            continue
        parts.append(part)
    if not parts:
        raise TftpError(ErrorCode.FILE_NOT_FOUND, "no file name")
    return "/".join(parts)


class TftpRoot:
    """Serve files under `root`, after asking `providers` in order."""

    def __init__(self, root: Path | str, providers: Sequence[FileProvider] = ()) -> None:
        self.root = Path(os.path.realpath(root))
        self.providers = list(providers)

    def open(self, filename: str, client: Address) -> FileSource:
        """Open the requested file. Raises TftpError (not found / access violation)."""
        path = normalize(self._strip_root_prefix(filename))
        for provider in self.providers:
            if provider.match(path):
                source = provider.open(path, client)
                if source is None:
                    raise TftpError(ErrorCode.FILE_NOT_FOUND, "file not found")
                return source
        return self._open_file(path)

    def _strip_root_prefix(self, filename: str) -> str:
        """Accept `/srv/tftp/x` as `x` when the root is /srv/tftp (in.tftpd habit)."""
        prefix = str(self.root).rstrip("/") + "/"
        return filename[len(prefix) :] if filename.startswith(prefix) else filename

    def resolve(self, path: str) -> Path:
        """The real path of normalised `path`, which must stay inside the root."""
        real = Path(os.path.realpath(self.root / path))
        if real != self.root and self.root not in real.parents:
            raise TftpError(ErrorCode.ACCESS_VIOLATION, "path escapes the root")
        return real

    def _open_file(self, path: str) -> FileSource:
        real = self.resolve(path)
        try:
            st = os.stat(real)
        except FileNotFoundError:
            raise TftpError(ErrorCode.FILE_NOT_FOUND, "file not found") from None
        except OSError:
            raise TftpError(ErrorCode.ACCESS_VIOLATION, "cannot access file") from None
        if not stat.S_ISREG(st.st_mode):
            raise TftpError(ErrorCode.ACCESS_VIOLATION, "not a regular file")
        return _open_regular(real)


def _open_regular(real: Path) -> FileSource:
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except OSError:
        raise TftpError(ErrorCode.ACCESS_VIOLATION, "cannot open file") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the stat: refuse
        os.close(fd)
        raise TftpError(ErrorCode.ACCESS_VIOLATION, "not a regular file")
    try:
        return OpenFileSource(fd)
    except OSError:
        raise TftpError(ErrorCode.ACCESS_VIOLATION, "cannot read file") from None
