"""What a TFTP session reads from: a size and random-access reads.

Why: the session must not care whether a file is on disk, rendered per node in
memory, or converted to netascii; a two-method protocol keeps those apart.
"""

from __future__ import annotations

import mmap
import os
from typing import Protocol


class FileSource(Protocol):
    """Content of one file being served. `read` past the end returns short/empty bytes."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, n: int) -> bytes: ...

    def close(self) -> None: ...


class BytesSource:
    """A file held in memory (rendered templates, per-node files, netascii copies)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    @property
    def size(self) -> int:
        return len(self._data)

    def read(self, offset: int, n: int) -> bytes:
        return self._data[offset : offset + n]

    def close(self) -> None:
        pass


class MappedFileSource:
    """A regular file, memory-mapped: one copy per block, no syscall per block."""

    def __init__(self, fd: int) -> None:
        """Takes ownership of `fd` (closed here once mapped)."""
        try:
            self._size = os.fstat(fd).st_size
            self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if self._size else None
        finally:
            os.close(fd)

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, n: int) -> bytes:
        if self._map is None:
            return b""
        return self._map[offset : offset + n]

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


MAX_NETASCII = 64 << 20


def to_netascii(data: bytes) -> bytes:
    """RFC 764 line ends: CR -> CR NUL, LF -> CR LF (the client undoes it)."""
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


def netascii_source(source: FileSource) -> FileSource:
    """An in-memory netascii copy of `source` (netascii is for small text files)."""
    if source.size > MAX_NETASCII:
        raise ValueError("file too large for netascii mode")
    data = source.read(0, source.size)
    source.close()
    return BytesSource(to_netascii(data))
