"""Packing an image tree: the canonical tar, compressed with zstd, into the store.

One pass over the tree gives both the content digest (sha256 of the tar)
and the artifact (the zstd stream, named by its own sha256). zstd runs with
one worker per core (like `zstd -T0`) at level 3; see docs/images.md for the
measurements behind tar over cpio and the level.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import zstandard

from corral.images.archive import Sink, TarWriter
from corral.images.records import ArtifactFile
from corral.images.store import new_artifact

LEVEL = 3


@dataclass(frozen=True)
class Packed:
    artifact: ArtifactFile
    digest: str


class ZstdSink:
    """A zstd compressor writing into `out` (one worker per core, like `zstd -T0`)."""

    def __init__(self, out: Sink, level: int = LEVEL, threads: int = -1) -> None:
        zc = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
        self._w = zc.stream_writer(cast(IO[bytes], out), closefd=False, write_size=1 << 20)

    def write(self, data: bytes | memoryview, /) -> int:
        return int(self._w.write(data))

    def close(self) -> None:
        self._w.close()  # type: ignore[no-untyped-call]


class _Tee:
    """Hashes the uncompressed stream on its way into the compressor."""

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()

    def write(self, data: bytes | memoryview, /) -> int:
        self.hash.update(data)
        self.inner.write(data)
        return len(data)


def pack_tree(
    home: Path,
    root: Path,
    on_data: Callable[[int], None] | None = None,
    level: int = LEVEL,
    leave_out: Collection[str] = (),
) -> Packed:
    """Write `root` as tar+zstd into the artifact store; return it and the content digest.

    `leave_out`: files (relative paths) packed apart, e.g. the distribution's initrd."""
    with new_artifact(home) as out:
        zw = ZstdSink(out, level)
        tee = _Tee(zw)
        TarWriter(tee, on_data).add_tree(root, leave_out)
        zw.close()
        artifact = out.commit(home, "tar+zstd")
    return Packed(artifact, "sha256:" + tee.hash.hexdigest())
