"""The initramfs every node downloads: within its ceiling, its corral-fetch a BitTorrent peer."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import zstandard

from corral.app import Corral
from corral.images.artifacts import pack_image
from corral.images.initramfs import (
    FETCH_CLIENT,
    STUBBED_LIBRARIES,
    TINY_CEILING,
    TOOLS_POINTER,
    libraries_in,
)
from corral.images.nicpack import NicPacks
from corral.images.records import Artifacts, Image
from corral.images.torrent import make_torrent
from corral.services.seeder import SeederSettings
from tests.conftest import need_tool
from tests.images.test_fetchclient import get_argv, publish, sha256_of
from tests.images.test_init_disk import function
from tests.services.test_seeder_swarm import SwarmServer, free_port, serve

URL = "http://10.9.0.1:8080"
FETCH = f"/{FETCH_CLIENT}"


@pytest.fixture
def packed(app: Corral, tiny: Image) -> Artifacts:
    return pack_image(app, "tiny", URL)


@pytest.fixture
def unpacked(app: Corral, packed: Artifacts, tmp_path: Path) -> Path:
    root = tmp_path / "initramfs"
    root.mkdir()
    unpack_into(root, packed.initramfs.path(app.settings.paths.home))  # with every NIC driver
    return root


@pytest.fixture
def swarm(corral_home: Path) -> Iterator[SwarmServer]:
    yield from serve(SeederSettings())


def test_the_tiny_images_initramfs_is_within_its_ceiling(app: Corral, packed: Artifacts) -> None:
    initrd = packed.initramfs
    assert initrd.format == "cpio+zstd" and initrd.base is not None and initrd.nics is not None
    home = app.settings.paths.home
    # what a ConnectX-5 node downloads: the first part and the mlx5 pack (the largest driver)
    mlx5 = NicPacks(home / "packs").pack(initrd.nics.path(home), "15B3", "1017")
    assert mlx5 is not None and "mlx5_core" in mlx5[1]
    every_node = initrd.base.size + mlx5[0].stat().st_size
    assert every_node <= TINY_CEILING, f"{every_node / 1e6:.2f} MB"
    # GRUB, TFTP and Raspberry Pi boots get both parts with every driver in one file
    whole = initrd.path(home).read_bytes()
    assert whole == initrd.base.path(home).read_bytes() + initrd.nics.path(home).read_bytes()


def unpack_into(root: Path, *parts: Path) -> None:
    """Each archive over the last, as the kernel unpacks concatenated ones (cpio stops at
    the first trailer, so one frame at a time)."""
    for part in parts:
        data = part.read_bytes()
        while data:
            frame = zstandard.ZstdDecompressor().decompressobj()
            raw = frame.decompress(data)
            subprocess.run(["cpio", "-idu", "--quiet"], input=raw, cwd=root, check=True)
            data = frame.unused_data


def test_the_first_part_has_no_nic_driver_and_a_nics_pack_only_its_own(
    app: Corral, packed: Artifacts, tmp_path: Path, root_only: None
) -> None:
    initrd = packed.initramfs
    assert initrd.base is not None and initrd.nics is not None
    home = app.settings.paths.home
    packs = NicPacks(home / "packs")
    kos = {}
    for label, ids, given in [
        ("base", None, [initrd.base.path(home)]),
        ("full", None, [initrd.path(home)]),
        ("e1000", ("8086", "100E"), []),
        ("virtio", ("1AF4", "1000"), []),
    ]:
        parts = given
        if ids is not None:
            found = packs.pack(initrd.nics.path(home), *ids)
            assert found is not None, label
            parts = [initrd.base.path(home), found[0]]
        root = tmp_path / label
        root.mkdir()
        unpack_into(root, *parts)
        files = {p.name.removesuffix(".ko") for p in root.rglob("*.ko")}
        moddir = next((root / "lib/modules").iterdir())
        # busybox modprobe finds each module present through the index: alias and path
        deps = (moddir / "modules.dep").read_text()
        for name in files:
            assert f"/{name}.ko:" in deps, (label, name)
        kos[label] = {name.replace("-", "_") for name in files}
    assert kos["base"] == {"overlay"}
    assert {"mlx5_core", "e1000", "virtio_net", "bnxt_en", "i40e"} <= kos["full"]
    assert kos["e1000"] == {"overlay", "e1000"}
    assert kos["virtio"] == {
        "overlay", "virtio", "virtio_ring", "virtio_pci", "virtio_pci_legacy_dev",
        "virtio_pci_modern_dev", "virtio_net", "net_failover", "failover",
    }  # fmt: skip
    assert packs.pack(initrd.nics.path(home), "1234", "5678") is None  # unknown: the full pack


def test_unused_libraries_are_stubs_and_what_only_they_needed_is_gone(
    app: Corral, packed: Artifacts, unpacked: Path, root_only: None
) -> None:
    libs = {p.name: p for p in libraries_in(unpacked)}
    for name in ("liblzma.so.5", "liblz4.so.1"):  # zstd's; the rest were aria2c's
        assert name in STUBBED_LIBRARIES
        assert libs[name].stat().st_size < 64 << 10, name  # the real ones are 0.1-1.8 MB
    # aria2c and its TLS stack are gone (corral-fetch replaced it on the host's arch)
    gone = ("libaria2", "libgnutls", "libxml2", "libsqlite3", "libicu", "libffi", "libp11")
    assert not [name for name in libs if name.startswith(gone)]
    assert "libtorrent-rasterbar.so.2.0" in libs
    # the initramfs' zstd (its liblzma and liblz4 stubs) still unpacks the packed image
    shutil.copy(packed.image.path(app.settings.paths.home), unpacked / "image.tar.zst")
    listed = subprocess.run(
        ["chroot", str(unpacked), "/bin/sh", "-c", "zstd -dcq /image.tar.zst | tar -tf -"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0 and "bin/busybox" in listed.stdout.split(), listed.stderr


@pytest.mark.slow
def test_the_initramfs_corral_fetch_downloads_from_the_swarm(
    swarm: SwarmServer, unpacked: Path, root_only: None
) -> None:
    """Two chrooted corral-fetch of the initramfs against corral's tracker and seeder."""
    image = publish(swarm, unpacked / "dl", 4 << 20)
    shown = subprocess.run(
        ["chroot", str(unpacked), FETCH, "info-hash", "/dl/image.torrent"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == f"{image.info_hash}\n"  # how the init checks the signed info-hash

    def node(name: str) -> subprocess.CompletedProcess[str]:
        inside = Path("/dl") / name
        argv = get_argv(Path("/dl/image.torrent"), inside, inside / "done", 0, free_port())
        return subprocess.run(
            ["chroot", str(unpacked), FETCH, *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(node, ["a", "b"]))
    for name, run in zip(("a", "b"), runs, strict=True):
        assert run.returncode == 0, run.stdout + run.stderr
        assert (unpacked / "dl" / name / "done").read_text() == f"/dl/{name}/image.tar.zst\n"
        assert sha256_of(unpacked / "dl" / name / "image.tar.zst") == image.sha256
    assert swarm.tracker.stats()[image.info_hash]["completed"] == 2


OVERLAP_FUNCTIONS = (
    "torrent_is_signed", "swarm_download", "watch_swarm", "start_unpack", "finish_unpack",
    "mount_root", "last_lines",
)  # fmt: skip


@pytest.mark.slow
def test_the_init_unpacks_the_image_while_corral_fetch_downloads_it(
    app: Corral, swarm: SwarmServer, packed: Artifacts, unpacked: Path, root_only: None
) -> None:
    """The init's own overlap (corral.overlap=1), by the initramfs' busybox, zstd and
    corral-fetch chrooted into it, in a mount namespace of its own (the RAM root)."""
    need_tool("unshare")
    archive = Path(shutil.copy(packed.image.path(app.settings.paths.home), unpacked / "tiny"))
    made = make_torrent(archive, "tiny.tar.zst", packed.image.sha256,
                        swarm.corral.options.server_url)  # fmt: skip
    (unpacked / "image.torrent").write_bytes(made.data)
    assert swarm.publish(unpacked / "image.torrent", archive) == made.info_hash
    script = (
        'say() { echo "corral: $*"; }\nfail() { echo "FAIL: $*"; exit 1; }\n'
        'http_get() { cp /image.torrent "$2"; }\n'
        + "".join(function(name) for name in OVERLAP_FUNCTIONS)
        + "RUN=/run/corral DL=/run/corral/download OVERLAP=1 BOOT=stateless SEED=0 STALL=30\n"
        f"TORRENT_INFO_HASH={made.info_hash} IMAGE_PACKED={packed.image.size}\n"
        'mount -t proc proc /proc && mkdir -p "$DL"\n'
        'swarm_download && echo "swarm UNPACKED=$UNPACKED"\n'
        "wait $FETCH_PID\n"
        'sha256sum "$IMAGE_FILE"; ls /newroot/bin/busybox /newroot/sbin/init\n'
    )
    done = subprocess.run(
        ["unshare", "--mount", "chroot", str(unpacked), "/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )
    out = done.stdout + done.stderr
    assert "swarm UNPACKED=1" in out, out
    assert f"{packed.image.sha256}  /run/corral/download/tiny.tar.zst" in out, out
    assert "/newroot/bin/busybox" in out and "/newroot/sbin/init" in out, out
    assert "No such file" not in out, out
    assert not (unpacked / "newroot" / "bin").exists()  # the RAM root was the namespace's


TOOLS_STUBS = """
RUN=/run DOWN= SERVERS= SERVER= CREDENTIAL=
say() { echo "corral: $*"; }
load_drivers() { :; }
"""
TOOLS_FUNCTIONS = (
    "need_tools", "tools_failed", "http_get", "http_get_one", "retry", "on_servers", "mirrors",
)  # fmt: skip


def need_tools_in(root: Path, http_server: str) -> subprocess.CompletedProcess[str]:
    """The init's own need_tools, run by the initramfs' busybox chrooted into it."""
    script = TOOLS_STUBS + "".join(function(name) for name in TOOLS_FUNCTIONS)
    script += f'HTTP_SERVERS="{http_server}"\nmkdir -p $RUN\nneed_tools || echo "$TOOLS_ERROR"\n'
    return subprocess.run(
        ["chroot", str(root), "/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )


def test_a_stateless_node_does_not_get_the_disk_tools(packed: Artifacts, unpacked: Path) -> None:
    tools = packed.initramfs.tools
    assert tools is not None and tools in packed.files()  # gc keeps it, servers sync it
    pointer = (unpacked / TOOLS_POINTER).read_text().split()
    assert pointer == [tools.sha256, str(tools.size), tools.format]
    for program in ("usr/sbin/sfdisk", "usr/sbin/mkfs.xfs", "usr/sbin/dropbear"):
        assert not (unpacked / program).exists()
    version = packed.kernel_version
    assert not list((unpacked / "lib/modules" / version).rglob("xfs.ko"))
    assert "virtio_net.ko" in (unpacked / "lib/modules" / version / "modules.dep").read_text()


@pytest.mark.slow
def test_need_tools_fetches_checks_and_unpacks_the_second_part(
    app: Corral, swarm: SwarmServer, packed: Artifacts, unpacked: Path, root_only: None
) -> None:
    done = need_tools_in(unpacked, swarm.corral.options.server_url)
    assert done.returncode == 0 and "disk and service tools" in done.stdout, done.stderr
    assert "the disk and service tools:" not in done.stdout  # no error
    for argv in (["mkfs.xfs", "-V"], ["sfdisk", "-v"], ["mkfs.ext4", "-V"], ["dropbear", "-V"]):
        run = subprocess.run(["chroot", str(unpacked), *argv], capture_output=True, check=False)
        assert run.returncode == 0, (argv, run.stderr)
    moddep = (unpacked / "lib/modules" / packed.kernel_version / "modules.dep").read_text()
    assert "xfs.ko:" in moddep and "virtio_net.ko:" in moddep  # the index of both parts
    assert not (unpacked / "run/tools.cpio").exists()


@pytest.mark.slow
def test_need_tools_refuses_a_second_part_that_is_not_the_one_built(
    app: Corral, swarm: SwarmServer, packed: Artifacts, unpacked: Path, root_only: None
) -> None:
    tools = packed.initramfs.tools
    assert tools is not None
    tools.path(app.settings.paths.home).write_bytes(b"not the tools")
    done = need_tools_in(unpacked, swarm.corral.options.server_url)
    assert f"sha256 {hashlib.sha256(b'not the tools').hexdigest()}, not {tools.sha256}" in (
        done.stdout
    )
    assert not (unpacked / "usr/sbin/mkfs.xfs").exists()
    assert not (unpacked / "run/tools.cpio").exists()
