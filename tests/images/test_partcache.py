"""Initramfs parts compressed once per content, machine-wide (corral.images.partcache)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import zstandard

from corral.images import partcache


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(partcache.CACHE_ENV, str(folder))
    return folder


RAW = b"070701" + bytes(range(256)) * 4096


def test_a_part_is_compressed_once_and_the_same_bytes_come_back(cache: Path) -> None:
    first = partcache.compressed(RAW, 19)
    assert zstandard.ZstdDecompressor().decompress(first) == RAW
    (kept,) = cache.iterdir()
    os.utime(kept, (1, 1))
    assert partcache.compressed(RAW, 19) == first
    assert kept.stat().st_mtime > 1  # a hit: marked used, pruned last
    assert oct(cache.stat().st_mode & 0o777) == "0o700"


def test_a_damaged_cache_file_is_never_served(cache: Path) -> None:
    first = partcache.compressed(RAW, 19)
    (kept,) = cache.iterdir()
    kept.write_bytes(first[: len(first) // 2])  # cut short, as a full disk would leave it
    again = partcache.compressed(RAW, 19)
    assert zstandard.ZstdDecompressor().decompress(again) == RAW
    assert kept.read_bytes() == again  # and the cache is mended
    other = zstandard.ZstdCompressor().compress(b"another part")
    kept.write_bytes(other)  # a whole frame, but not of this content
    assert zstandard.ZstdDecompressor().decompress(partcache.compressed(RAW, 19)) == RAW


def test_without_a_writable_cache_parts_are_still_made(cache: Path) -> None:
    cache.write_text("a file where the folder should be")
    assert zstandard.ZstdDecompressor().decompress(partcache.compressed(RAW, 9)) == RAW


def test_the_cache_keeps_the_most_recently_used(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partcache, "KEEP", 2)
    for i in range(3):
        partcache.compressed(RAW + bytes([i]), 3)
    assert len(list(cache.iterdir())) == 2
