"""What a TFTP session reads from: a size and random-access reads.

Why: the session must not care whether a file is on disk, rendered per node in
memory, or converted to netascii; a two-method protocol keeps those apart.
"""

from __future__ import annotations

import os
from array import array
from bisect import bisect_right
from typing import Protocol


class FileSource(Protocol):
    """Content of one file being served. `read` past the end returns short/empty bytes."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, n: int) -> bytes: ...

    def close(self) -> None: ...


class BytesSource:
    """A file held in memory (rendered templates, per-node files)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def data(self) -> bytes:
        return self._data

    def read(self, offset: int, n: int) -> bytes:
        return self._data[offset : offset + n]

    def close(self) -> None:
        pass


class OpenFileSource:
    """A regular file read block by block with `pread`; never memory-mapped.

    Why not mmap: a mapped file that is truncated while it is served raises
    SIGBUS on the next read, which kills the whole process (DHCP and HTTP
    with it). `pread` just returns fewer bytes; the session notices and fails
    that one transfer. Reads stop at the size seen at open, so what is sent
    always matches the `tsize` announced.
    """

    def __init__(self, fd: int) -> None:
        """Takes ownership of `fd` (closed by `close`, or here if fstat fails)."""
        try:
            self._size = os.fstat(fd).st_size
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    @property
    def size(self) -> int:
        return self._size

    def fileno(self) -> int:
        """The open file (-1 once closed): a TFTP worker process is handed a copy."""
        return self._fd

    def read(self, offset: int, n: int) -> bytes:
        n = min(n, self._size - offset)
        if self._fd < 0 or n <= 0:
            return b""
        try:
            return os.pread(self._fd, n, offset)
        except OSError:
            return b""  # the session sees a short block and fails the transfer

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class NoRollover:
    """`source` for a client that cannot roll the block number over past 65535.

    The Raspberry Pi bootloader is one: a file that needs more blocks than
    that (at the negotiated block size) is refused with an error that says
    why, instead of failing at the wrap far into the transfer.
    """

    rollover = False

    def __init__(self, source: FileSource) -> None:
        self._source = source

    @property
    def inner(self) -> FileSource:
        return self._source

    @property
    def size(self) -> int:
        return self._source.size

    def read(self, offset: int, n: int) -> bytes:
        return self._source.read(offset, n)

    def close(self) -> None:
        self._source.close()


MAX_NETASCII = 4 << 20  # netascii is for small text files; sizing one reads it once
NETASCII_CHUNK = 8192


def to_netascii(data: bytes) -> bytes:
    """RFC 764 line ends: CR -> CR NUL, LF -> CR LF (the client undoes it)."""
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


class NetasciiSource:
    """`source` converted to netascii on the fly, never copied whole.

    The converted size (for `tsize` and the block count) is counted once at
    open; the converted offset where each raw chunk starts is kept, so a
    block (or a retransmitted one) converts at most two chunks, and the last
    converted chunk is cached for the sequential case.
    """

    def __init__(self, source: FileSource) -> None:
        if source.size > MAX_NETASCII:
            raise ValueError(f"file too large for netascii mode (over {MAX_NETASCII} bytes)")
        self._raw = source
        starts = array("Q", [0])
        for pos in range(0, source.size, NETASCII_CHUNK):
            data = source.read(pos, NETASCII_CHUNK)
            starts.append(starts[-1] + len(data) + data.count(b"\r") + data.count(b"\n"))
        self._starts = starts
        self._cached: tuple[int, bytes] = (-1, b"")

    @property
    def size(self) -> int:
        return self._starts[-1]

    def _chunk(self, i: int) -> bytes:
        if self._cached[0] != i:
            raw = self._raw.read(i * NETASCII_CHUNK, NETASCII_CHUNK)
            self._cached = (i, to_netascii(raw))
        return self._cached[1]

    def read(self, offset: int, n: int) -> bytes:
        out = bytearray()
        i = bisect_right(self._starts, offset) - 1
        while len(out) < n and 0 <= i < len(self._starts) - 1:
            skip = max(offset - self._starts[i], 0)
            out += self._chunk(i)[skip : skip + n - len(out)]
            i += 1
        return bytes(out)

    def close(self) -> None:
        self._cached = (-1, b"")
        self._raw.close()


def netascii_source(source: FileSource) -> FileSource:
    """`source` as netascii (raises ValueError, closing nothing, if it is too large)."""
    return NetasciiSource(source)
