"""A node's rendered files as a deterministic .tar.gz that busybox tar unpacks.

The initramfs fetches it over HTTP and runs `tar -xzf - -C /newroot`, so the
archive sticks to plain ustar: regular files only (parent directories are
created by tar), names under 100+155 bytes, owner root:root, a fixed mtime,
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


def _member(path: str, size: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.size = size
    info.mode = mode & 0o7777
    info.mtime = ARCHIVE_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.type = tarfile.REGTYPE
    return info


def overlay_archive(rendered: RenderedOverlay) -> bytes:
    """The rendered files as gzip-compressed ustar, identical bytes for identical files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(rendered.files):
            data, mode = rendered.files[path]
            try:
                tar.addfile(_member(path, len(data), mode), io.BytesIO(data))
            except ValueError as exc:
                raise OverlayError(f"node {rendered.node}: cannot archive {path}: {exc}") from exc
    return gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)
