"""A node's rendered files as a deterministic .tar.gz that busybox tar unpacks.

The initramfs fetches it over HTTP and runs `tar -xzf - -C /newroot`, so the
archive sticks to plain ustar: regular files only (parent directories are
created by tar), names under 100+155 bytes, uid and gid 0, a fixed mtime,
entries sorted, and a gzip header without name or time. The same files
always give the same bytes, so the server can use the digest as an ETag.
"""

from __future__ import annotations

import gzip
import io
import tarfile

from corral.overlays.errors import OverlayError
from corral.overlays.render import RenderedOverlay

ARCHIVE_MTIME = 0


def _member(path: str, size: int, mode: int, owner: str = "") -> tarfile.TarInfo:
    """A ustar entry; a file owned by a user of the image carries the names only.

    The initramfs's tar cannot map `munge` to the image's uid (it unpacks before
    the image's /etc/passwd is in force), so such a file lands as root with its
    own (restrictive) mode; the node agent sets the owner by name for runtime
    overlays, and an overlay whose daemon checks the owner at start also fixes it
    there (the slurm overlay's munge drop-in).
    """
    info = tarfile.TarInfo(path.lstrip("/"))
    info.size = size
    info.mode = mode & 0o7777
    info.mtime = ARCHIVE_MTIME
    info.uid = info.gid = 0
    user, _, group = (owner or "root:root").partition(":")
    info.uname, info.gname = user, group
    info.type = tarfile.REGTYPE
    return info


def overlay_archive(rendered: RenderedOverlay) -> bytes:
    """The rendered files as gzip-compressed ustar, identical bytes for identical files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(rendered.files):
            data, mode, owner = rendered.files[path]
            try:
                tar.addfile(_member(path, len(data), mode, owner), io.BytesIO(data))
            except ValueError as exc:
                raise OverlayError(f"node {rendered.node}: cannot archive {path}: {exc}") from exc
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)
