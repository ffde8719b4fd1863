"""arm64 UEFI HTTP boot image: the node's grub.cfg written over the slot of a cached FAT image.

The whole-boot proof is tests/e2e/test_arm64_boot.py (AAVMF under TCG); here, the splice
gives a FAT image that fsck and mtools read back with the config in place, whatever the
chunking, and a caller that is no node's address gets nothing made.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from corral.actions import LocalActions
from corral.images import api, artifacts
from corral.images.bootimg import build_boot_img
from corral.images.errors import ImageError
from corral.images.foreign import ARM64_LOADER_PACKAGE, cached
from corral.images.tiny import build_tiny_tree
from corral.services.http import efiboot
from corral.store.schema import boot_tokens
from tests.conftest import need, need_tool
from tests.images.conftest import cache_dir
from tests.services.conftest import LiveServer
from tests.services.test_http_api import call

MTOOLS = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MTOOLS_SKIP_CHECK": "1"}
CONFIG = "set timeout=0\nlinux /kernel corral.token=secret-token console=ttyAMA0\nboot\n"


def base_image(tmp_path: Path) -> tuple[Path, int]:
    need_tool("mkfs.fat", "mcopy", "mmd", "fsck.fat")
    members = {
        efiboot.LOADER: os.urandom(70_001),
        efiboot.GRUB_CFG: efiboot.slot_text("k1"),
        "kernel": os.urandom(300_000),
    }
    path = build_boot_img(tmp_path / "k1.img", members)
    return path, efiboot.find_slot(path, efiboot.slot_text("k1"))


@pytest.mark.parametrize("chunk", [1000, 4096, 1 << 20])
def test_spliced_image_is_a_fat_with_the_nodes_grub_cfg(tmp_path: Path, chunk: int) -> None:
    path, slot = base_image(tmp_path)
    config = efiboot.filled(CONFIG)
    data = path.read_bytes()
    out = b"".join(
        efiboot.splice(data[i : i + chunk], i, slot, config) for i in range(0, len(data), chunk)
    )
    assert len(out) == len(data)
    spliced = tmp_path / "spliced.img"
    spliced.write_bytes(out)
    check = subprocess.run(
        ["fsck.fat", "-n", str(spliced)], check=False, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    read = subprocess.run(
        ["mcopy", "-i", str(spliced), f"::{efiboot.GRUB_CFG}", "-"],
        capture_output=True,
        check=True,
        env=MTOOLS,
    ).stdout
    assert read == config and read.startswith(CONFIG.encode())
    kernel = subprocess.run(
        ["mcopy", "-i", str(spliced), "::kernel", "-"], capture_output=True, check=True, env=MTOOLS
    ).stdout
    assert len(kernel) == 300_000
    assert b"secret-token" not in path.read_bytes()  # the cached image never holds a token


def test_a_config_larger_than_the_slot_is_refused() -> None:
    with pytest.raises(ImageError, match="does not fit"):
        efiboot.filled("#" * (efiboot.SLOT_SIZE + 1))


def test_an_image_without_its_slot_is_refused(tmp_path: Path) -> None:
    path, _ = base_image(tmp_path)
    with pytest.raises(ImageError, match="not one contiguous slot"):
        efiboot.find_slot(path, efiboot.slot_text("other"))


def test_no_image_for_an_address_that_is_no_nodes(live_server: LiveServer) -> None:
    for method in ("HEAD", "GET"):
        status, body, _ = call(live_server, method, "/boot/arm64-efi/boot.img", token=None)
        assert status == 404, method
    _, body, _ = call(live_server, "GET", "/boot/arm64-efi/boot.img", token=None)
    assert b"127.0.0.1 is no node's address" in body
    assert not (live_server.corral.settings.paths.home / efiboot.STATE_DIR).exists()


@pytest.mark.slow
def test_the_nodes_image_has_a_new_token_each_boot_and_is_made_once(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """Two GETs from the node's address: two single-use tokens, one cached image, no token
    on disk; HEAD gives the same size and mints nothing."""
    need_tool("dpkg", "apt-get", "depmod", "readelf", "mkfs.fat", "mcopy", "mmd")
    app = live_server.corral
    tree = tmp_path / "rootfs"
    build_tiny_tree(tree, cache_dir(), "arm64")  # fetches grub-efi-arm64-signed when packed
    actions = LocalActions(app)
    actions.add_network({"name": "lo", "cidr": "127.0.0.0/8"})
    actions.add_profile({"name": "arm", "networks": ["lo"], "image": "arm"})
    actions.add_nodes(["a01"], {"profiles": ["arm"]}, mac="52:54:00:aa:00:09", ip="127.0.0.1")
    api.import_image(app, str(tree), "arm")
    artifacts.pack_image(app, "arm", live_server.url)
    need(cached(ARM64_LOADER_PACKAGE, "arm64") is not None, "arm64 GRUB in the deb cache")

    status, _, headers = call(live_server, "HEAD", "/boot/arm64-efi/boot.img", token=None)
    assert status == 200 and headers["Content-Type"] == efiboot.CONTENT_TYPE
    with app.store.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(boot_tokens)).scalar() == 0
    folder = app.settings.paths.home / efiboot.STATE_DIR
    (cached_image,) = folder.glob("*.img")
    made = cached_image.stat()
    configs = []
    for n in range(2):
        status, body, _ = call(live_server, "GET", "/boot/arm64-efi/boot.img", token=None)
        assert status == 200 and len(body) == int(headers["Content-Length"])
        got = tmp_path / f"got{n}.img"
        got.write_bytes(body)
        configs.append(mcopy(got, efiboot.GRUB_CFG).decode())
        assert mcopy(got, "kernel") == mcopy(cached_image, "kernel")
    tokens = [c.split("corral.token=", 1)[1].split()[0] for c in configs]
    assert tokens[0] != tokens[1]
    assert "linux /kernel " in configs[0] and "initrd /initramfs" in configs[0]
    assert list(folder.glob("*.img")) == [cached_image]
    assert cached_image.stat().st_ino == made.st_ino  # not made again (made by rename)
    home = app.settings.paths.home
    for path in home.rglob("*"):
        if path.is_file() and path.stat().st_size < 200 * 1024 * 1024:
            data = path.read_bytes()
            assert not any(t.encode() in data for t in tokens), path
    assert stat.S_IMODE(cached_image.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def mcopy(image: Path, name: str) -> bytes:
    argv = ["mcopy", "-i", str(image), f"::{name}", "-"]
    return subprocess.run(argv, capture_output=True, check=True, env=MTOOLS).stdout
