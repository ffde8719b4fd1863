"""Compressed initramfs parts, kept machine-wide by the sha256 of their cpio.

A part is the same bytes whenever its inputs are (a kernel's modules, the tools, the
node client), so re-packing an image, or packing another image on the same kernel,
costs a hash instead of a zstd level-19 pass (seconds per part on 2 cores; the test
suite packs the same kernel's parts dozens of times). A hit is checked against its key
before use, so a damaged cache file is compressed again, never served. Optional: where
the cache cannot be written (not root, a read-only disk), parts are just compressed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import zstandard

from corral.images import recent

CACHE_ENV = "CORRAL_INITRAMFS_CACHE"
DEFAULT_CACHE = Path("/var/cache/corral/initramfs")
KEEP = 64  # parts kept (a few MB each): the kernels of the images packed lately


def cache_dir() -> Path:
    """`$CORRAL_INITRAMFS_CACHE`, or the default."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def compressed(raw: bytes, level: int) -> bytes:
    """`raw` as one zstd frame at `level` (with its checksum), from the cache if there."""
    key = hashlib.sha256(raw).hexdigest()
    path = cache_dir() / f"{key}-zstd{level}.zst"
    with contextlib.suppress(OSError, zstandard.ZstdError):
        data = path.read_bytes()
        if hashlib.sha256(zstandard.ZstdDecompressor().decompress(data)).hexdigest() == key:
            recent.touched(path)
            return data
    data = zstandard.ZstdCompressor(level=level, threads=-1, write_checksum=True).compress(raw)
    with contextlib.suppress(OSError):
        _keep(path, data)
    return data


def _keep(path: Path, data: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        tmp.rename(path)
    finally:
        tmp.unlink(missing_ok=True)
    recent.prune(path.parent, "*.zst", KEEP)
