"""The arm64 initramfs carries what the x86-64 one carries, all arm64, all loadable.

Built for the tiny arm64 image from arm64 Debian packages on this x86-64
machine; unpacked, every ELF file must be AArch64 with each library it names
(DT_NEEDED) and its loader in the initramfs. Where binfmt hands arm64 programs
to QEMU (`make deps` sets it up), the programs also run, in a chroot of the
unpacked initramfs: the real ones, not busybox applets of the same name.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from corral.app import Corral
from corral.images import api, artifacts
from corral.images.debootstrap import check_emulation
from corral.images.errors import ImageError
from corral.images.tiny import build_tiny_tree
from corral.lab.image import add_lab_init
from tests.conftest import need_tool
from tests.images.conftest import cache_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

# what the amd64 initramfs has (initramfs.PROGRAMS, OPTIONAL_PROGRAMS), and how to ask each
# for its version: (path, argv, words its own output has)
PROGRAMS = (
    ("usr/bin/openssl", ["version"], "OpenSSL"),
    ("usr/bin/aria2c", ["--version"], "aria2 version"),
    ("usr/bin/zstd", ["--version"], "Zstandard"),
    ("usr/sbin/sfdisk", ["--version"], "util-linux"),
    ("usr/sbin/blkid", ["-V"], "util-linux"),
    ("usr/sbin/mkfs.ext4", ["-V"], "mke2fs"),
    ("usr/sbin/mkfs.xfs", ["-V"], "mkfs.xfs version"),
    ("usr/sbin/dropbear", ["-V"], "Dropbear"),
)


def unpack(initramfs: Path, dest: Path) -> None:
    """Unpack over what `dest` holds (the second part over the first, as the init does)."""
    data = subprocess.run(["zstd", "-dc", str(initramfs)], capture_output=True, check=True)
    subprocess.run(["cpio", "-idmu", "--quiet"], input=data.stdout, cwd=dest, check=True)


def elf_report(path: Path) -> tuple[str, list[str], str | None]:
    out = subprocess.run(
        ["readelf", "-h", "-d", "-l", "-W", str(path)], capture_output=True, text=True, check=True
    ).stdout
    machine = re.search(r"Machine:\s+(.*)", out)
    interp = re.search(r"Requesting program interpreter: ([^\]]+)\]", out)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    return (machine.group(1).strip() if machine else "?"), needed, interp and interp.group(1)


def test_arm64_initramfs_has_the_amd64_programs_built_for_arm64(
    app: Corral, tmp_path: Path
) -> None:
    need_tool("dpkg", "apt-get", "depmod", "readelf", "zstd", "cpio")
    tree = tmp_path / "rootfs"
    build_tiny_tree(tree, cache_dir(), "arm64")
    add_lab_init(tree)
    api.import_image(app, str(tree), "arm")
    arts = artifacts.pack_image(app, "arm", "http://127.0.0.1:9480")
    stage = tmp_path / "initramfs"
    stage.mkdir()
    unpack(arts.initramfs.path(app.settings.paths.home), stage)
    # the disk tools and dropbear are in the second part, which the init fetches
    assert not (stage / "usr/sbin/mkfs.xfs").exists() and not (stage / "sbin/mkfs.xfs").exists()
    assert arts.initramfs.tools is not None
    unpack(arts.initramfs.tools.path(app.settings.paths.home), stage)
    for program, _, _ in PROGRAMS:
        assert (stage / program).exists(), program
    sonames = {p.name for p in stage.rglob("*.so*")}
    elves = [p for p in stage.rglob("*") if p.is_file() and not p.is_symlink()]
    elves = [p for p in elves if p.read_bytes()[:4] == b"\x7fELF"]
    assert len(elves) > 20
    for elf in elves:
        machine, needed, interp = elf_report(elf)
        assert machine == "AArch64", elf
        assert set(needed) <= sonames, (elf, set(needed) - sonames)
        assert interp is None or (stage / interp.lstrip("/")).exists(), elf
    try:
        check_emulation("arm64")
    except ImageError:
        return  # no binfmt here: the ELF check above is what can be shown
    for program, argv, words in PROGRAMS:
        run = subprocess.run(
            ["chroot", str(stage), f"/{program}", *argv],
            capture_output=True,
            text=True,
            check=False,
        )
        assert words in run.stdout + run.stderr, (program, run.stdout, run.stderr)
    # aria2c with its libxml2 and sqlite3 stubs (no ICU) reads the image's torrent
    assert not list(stage.rglob("libicu*"))
    shutil.copy(arts.torrent.path(app.settings.paths.home), stage / "image.torrent")
    shown = subprocess.run(
        ["chroot", str(stage), "/usr/bin/aria2c", "-S", "/image.torrent"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert f"Info Hash: {arts.torrent.info_hash}" in shown.stdout, shown.stderr
