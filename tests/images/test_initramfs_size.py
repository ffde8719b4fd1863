"""The initramfs every node downloads: within its ceiling, aria2c still a BitTorrent peer."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from corral.app import Corral
from corral.images.artifacts import pack_image
from corral.images.initramfs import STUBBED_LIBRARIES, TINY_CEILING, libraries_in
from corral.images.records import Artifacts, Image
from corral.services.seeder import SeederSettings
from tests.services.test_seeder_swarm import SwarmServer, download_two, serve

URL = "http://10.9.0.1:8080"


@pytest.fixture
def packed(app: Corral, tiny: Image) -> Artifacts:
    return pack_image(app, "tiny", URL)


@pytest.fixture
def unpacked(app: Corral, packed: Artifacts, tmp_path: Path) -> Path:
    root = tmp_path / "initramfs"
    root.mkdir()
    data = packed.initramfs.path(app.settings.paths.home).read_bytes()
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    subprocess.run(["cpio", "-id", "--quiet"], input=raw, cwd=root, check=True)
    return root


@pytest.fixture
def swarm(corral_home: Path) -> Iterator[SwarmServer]:
    yield from serve(SeederSettings())


def test_the_tiny_images_initramfs_is_within_its_ceiling(packed: Artifacts) -> None:
    assert packed.initramfs.format == "cpio+zstd"
    assert packed.initramfs.size <= TINY_CEILING, f"{packed.initramfs.size / 1e6:.2f} MB"


def test_aria2c_optional_libraries_are_stubs_and_what_only_they_needed_is_gone(
    unpacked: Path,
) -> None:
    libs = {p.name: p for p in libraries_in(unpacked)}
    for name in STUBBED_LIBRARIES:
        assert libs[name].stat().st_size < 64 << 10, name  # the real ones are 1.4-1.8 MB
    assert not [name for name in libs if name.startswith("libicu")]


@pytest.mark.slow
def test_the_initramfs_aria2c_downloads_from_the_swarm(
    swarm: SwarmServer, unpacked: Path, tmp_path: Path, root_only: None
) -> None:
    """Two chrooted aria2c of the initramfs against corral's tracker and seeder (real peers)."""
    info_hash = download_two(swarm, tmp_path, 4 << 20, 256 << 10, root=unpacked)
    stats = swarm.tracker.stats()[info_hash]
    assert stats["completed"] == 2
    # `aria2c -S` is how the init reads the info-hash it checks against the signature
    shown = subprocess.run(
        ["chroot", str(unpacked), "aria2c", "-S", "/dl/image.torrent"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"Info Hash: {info_hash}" in shown.stdout
