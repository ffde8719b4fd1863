"""A cpio "newc" writer: the format the kernel unpacks an initramfs from.

Entries come in `tree.walk` order; hard links are written as separate
files. Parents must come before children (the kernel does not create missing
directories), which the walk order guarantees; extra device nodes are added
after the tree. Files are streamed, never read whole.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from corral.images.archive import CHUNK, Sink
from corral.images.tree import walk

TRAILER = b"TRAILER!!!"


def header(
    name: bytes, ino: int, mode: int, size: int, mtime: int = 0, rdev: int = 0, owner: int = 0
) -> bytes:
    """A newc header (owner = uid << 32 | gid), padded to 4 bytes."""
    uid, gid = owner >> 32, owner & 0xFFFFFFFF
    fields = [ino, mode, uid, gid, 1, mtime, size, 0, 0, os.major(rdev), os.minor(rdev)]
    fields += [len(name) + 1, 0]
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + name + b"\0"
    return head + bytes(-len(head) % 4)


class CpioWriter:
    """Writes entries into `sink`; with `mtime` set, all times are that and owners root."""

    def __init__(self, sink: Sink, mtime: int | None = None) -> None:
        self.sink = sink
        self.ino = 0
        self.mtime = mtime
        self.owner = 0

    def add_tree(self, root: Path) -> None:
        for rel, st in walk(root):
            if rel != ".":
                self.add(root / rel, rel, st)

    def add(self, path: Path, rel: str, st: os.stat_result) -> None:
        self.ino += 1
        name, mode = os.fsencode(rel), st.st_mode
        mtime = int(st.st_mtime) if self.mtime is None else self.mtime
        self.owner = (st.st_uid << 32 | st.st_gid) if self.mtime is None else 0
        if stat.S_ISLNK(mode):
            self._entry(name, mode, os.fsencode(os.readlink(path)), mtime)
        elif stat.S_ISREG(mode):
            self.sink.write(header(name, self.ino, mode, st.st_size, mtime, 0, self.owner))
            with path.open("rb", buffering=0) as fh:
                while block := fh.read(CHUNK):
                    self.sink.write(block)
            self.sink.write(bytes(-st.st_size % 4))
        elif not stat.S_ISSOCK(mode):
            self._entry(name, mode, b"", mtime, st.st_rdev)

    def add_device(self, rel: str, mode: int, major: int, minor: int) -> None:
        self.ino += 1
        self.owner = 0
        self._entry(os.fsencode(rel), mode, b"", self.mtime or 0, os.makedev(major, minor))

    def _entry(self, name: bytes, mode: int, data: bytes, mtime: int, rdev: int = 0) -> None:
        head = header(name, self.ino, mode, len(data), mtime, rdev, self.owner)
        self.sink.write(head + data + bytes(-len(data) % 4))

    def close(self) -> None:
        self.sink.write(header(TRAILER, 0, 0, 0))
