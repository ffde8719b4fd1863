"""A Raspberry Pi boot.img: a FAT image that dosfstools and mtools read back as written."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from corral.images.bootimg import build_boot_img
from corral.images.errors import ImageError
from tests.conftest import need_tool

MTOOLS = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MTOOLS_SKIP_CHECK": "1"}


def mtools(*argv: str) -> bytes:
    return subprocess.run(list(argv), capture_output=True, check=True, env=MTOOLS).stdout


def test_boot_img_holds_the_files_and_passes_fsck(tmp_path: Path) -> None:
    need_tool("mkfs.fat", "mcopy", "mdir", "fsck.fat")
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # not a whole number of clusters
    link = tmp_path / "kernel-link"
    link.symlink_to(kernel)  # a member may be a symlink: its target is copied
    image = build_boot_img(
        tmp_path / "out" / "boot.img",
        {"config.txt": b"arm_64bit=1\n", "kernel8.img": link, "corral-initramfs.img": kernel},
    )
    assert stat.S_IMODE(image.stat().st_mode) == 0o600
    check = subprocess.run(
        ["fsck.fat", "-n", str(image)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    names = mtools("mdir", "-b", "-i", str(image), "::").decode().split()
    assert sorted(names) == ["::/config.txt", "::/corral-initramfs.img", "::/kernel8.img"]
    assert mtools("mcopy", "-i", str(image), "::kernel8.img", "-") == kernel.read_bytes()
    assert mtools("mcopy", "-i", str(image), "::config.txt", "-") == b"arm_64bit=1\n"
    assert not list((tmp_path / "out").glob(".bootimg-*"))  # no staging left behind


def test_boot_img_refuses_a_path_as_a_member_name(tmp_path: Path) -> None:
    need_tool("mkfs.fat", "mcopy")
    with pytest.raises(ImageError, match="plain file names only"):
        build_boot_img(tmp_path / "boot.img", {"../evil": b"x"})
    assert not (tmp_path / "boot.img").exists()


def test_boot_img_members_in_folders(tmp_path: Path) -> None:
    """A UEFI RAM disk's layout: EFI/BOOT/BOOTAA64.EFI and EFI/debian/grub.cfg."""
    need_tool("mkfs.fat", "mcopy", "mmd", "fsck.fat")
    members = {"EFI/BOOT/BOOTAA64.EFI": b"MZ loader", "EFI/debian/grub.cfg": b"boot\n"}
    image = build_boot_img(tmp_path / "boot.img", {**members, "kernel": b"k"})
    check = subprocess.run(
        ["fsck.fat", "-n", str(image)], check=False, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    for name, content in members.items():
        assert mtools("mcopy", "-i", str(image), f"::{name}", "-") == content
