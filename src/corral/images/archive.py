"""The canonical archive of an image tree: the one byte stream its digest is over.

A POSIX (pax) tar, entries in `tree.walk` order, numeric owners without
names, integer mtimes, extended attributes as SCHILY.xattr records, hard
links as links to the first path seen. The same tree always gives the same
bytes, so `sha256(canonical tar)` is the image's content digest, and the
packed image is exactly that stream compressed with zstd.

File data is streamed in large blocks straight from the file (tarfile's own
`addfile` copies 16 KiB at a time): only the 512-byte headers come from
`tarfile.TarInfo.tobuf`.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Protocol

from corral.images.errors import ImageError
from corral.images.tree import walk

BLOCK = 512
RECORD = 20 * BLOCK
CHUNK = 1 << 20


class Sink(Protocol):
    def write(self, data: bytes | memoryview, /) -> object: ...


class TarWriter:
    """Writes the canonical tar of one tree into `sink`, counting bytes."""

    def __init__(self, sink: Sink, on_data: Callable[[int], None] | None = None) -> None:
        self.sink = sink
        self.offset = 0
        self.on_data = on_data
        self.links: dict[tuple[int, int], str] = {}
        self.buf = bytearray(CHUNK)

    def _out(self, data: bytes | memoryview) -> None:
        self.sink.write(data)
        self.offset += len(data)

    def add_tree(self, root: Path, leave_out: Collection[str] = ()) -> None:
        """The whole tree but the files named in `leave_out` (paths relative to `root`)."""
        for rel, st in walk(root):
            if rel not in leave_out:
                self.add(root, rel, st)
        self.close()

    def add(self, root: Path, rel: str, st: os.stat_result) -> None:
        path = os.path.join(root, rel)
        info = self._info(path, rel, st)
        if info is None:
            return
        self._out(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if info.type == tarfile.REGTYPE and info.size:
            self._data(path, info.size)

    def _info(self, path: str, rel: str, st: os.stat_result) -> tarfile.TarInfo | None:
        mode = st.st_mode
        info = tarfile.TarInfo(rel)
        info.mode = stat.S_IMODE(mode)
        info.uid, info.gid, info.uname, info.gname = st.st_uid, st.st_gid, "", ""
        info.mtime = int(st.st_mtime)
        if stat.S_ISREG(mode):
            first = self.links.setdefault((st.st_dev, st.st_ino), rel) if st.st_nlink > 1 else rel
            if first != rel:
                info.type, info.linkname = tarfile.LNKTYPE, first
            else:
                info.type, info.size = tarfile.REGTYPE, st.st_size
        elif stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        else:
            return None  # sockets are runtime state, not image content
        info.pax_headers = _xattrs(path)
        return info

    def _data(self, path: str, size: int) -> None:
        view = memoryview(self.buf)
        left = size
        with open(path, "rb", buffering=0) as fh:
            while left > 0:
                n = fh.readinto(view[: min(CHUNK, left)])
                if not n:
                    raise ImageError(f"{path} shrank while being archived; run again")
                self._out(view[:n])
                left -= n
                if self.on_data:
                    self.on_data(n)
        pad = -size % BLOCK
        if pad:
            self._out(bytes(pad))

    def close(self) -> None:
        self._out(bytes(2 * BLOCK))
        pad = -self.offset % RECORD
        if pad:
            self._out(bytes(pad))


def _xattrs(path: str) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for name in sorted(names):
        value = os.getxattr(path, name, follow_symlinks=False)
        out[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return out


class HashSink:
    """A sink that only hashes."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: bytes | memoryview, /) -> int:
        self.hash.update(data)
        return len(data)


def content_digest(root: Path, on_data: Callable[[int], None] | None = None) -> str:
    """sha256 of the canonical tar of `root`, as 'sha256:<hex>'."""
    sink = HashSink()
    TarWriter(sink, on_data).add_tree(root)
    return "sha256:" + sink.hash.hexdigest()
