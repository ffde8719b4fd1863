"""A FAT file system image holding boot files: a Raspberry Pi's or a UEFI RAM disk's.

A Raspberry Pi in HTTP boot (bootloader mode 7) downloads `boot.img` and
`boot.sig` and boots from the image as if it were the SD card's boot
partition; UEFI HTTP boot downloads a `.img` as a RAM disk and starts its
`EFI/BOOT/BOOT<arch>.EFI` (`services/http/efiboot.py`). Made as the Raspberry
Pi's own `rpi-make-boot-image` (usbboot) makes it: `mkfs.fat -C` (dosfstools)
of a size that fits the files, then `mmd` and `mcopy` (mtools) of the files
into it, so no loop device or mount is needed and it runs unprivileged.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from corral.images import tools
from corral.images.errors import ImageError

CLUSTER = 4096  # bytes: mkfs.fat's cluster at these sizes, for the size estimate
SLACK = 1024 * 1024  # FATs, root directory, long names
VOLUME_ID = "c0a11a00"  # fixed: the same files give the same FAT but for the file times
# mtools reads ~/.mtoolsrc and /etc/mtools.conf: only the image given with -i matters here
MTOOLS_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MTOOLS_SKIP_CHECK": "1"}
Member = Path | bytes


def image_size_kib(members: Mapping[str, Member]) -> int:
    """Room for every member rounded up to whole clusters, plus the FAT's own, in KiB."""
    total = SLACK
    for content in members.values():
        size = len(content) if isinstance(content, bytes) else content.stat().st_size
        total += -(-size // CLUSTER) * CLUSTER
    return -(-(total + total // 50) // 1024)  # and 2% for the FATs of a large image


def check_member(name: str) -> PurePosixPath:
    """A member's path in the image: relative, each part a plain file name."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or any(p.startswith(".") for p in path.parts):
        raise ImageError(f"boot.img member {name!r}: plain file names only (or DIR/NAME)")
    return path


def build_boot_img(dest: Path, members: Mapping[str, Member]) -> Path:
    """Write a FAT image at `dest` (0600, by atomic rename) holding `members`.

    `members` maps a path in the image (`config.txt`, `EFI/BOOT/BOOTAA64.EFI`)
    to a file on disk or its bytes.
    """
    mkfs = tools.require("mkfs.fat", "dosfstools")
    mcopy = tools.require("mcopy", "mtools")
    paths = {name: check_member(name) for name in members}
    folders = sorted({str(p.parent) for p in paths.values()})
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".bootimg-") as tmp:  # 0700
        stage = Path(tmp) / "files"
        for name, content in members.items():
            staged = stage / paths[name]
            staged.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                staged.write_bytes(content)
            else:
                staged.symlink_to(content.resolve())  # mcopy reads through it
        image = Path(tmp) / "boot.img"
        size = str(image_size_kib(members))
        tools.run([mkfs, "-C", "-n", "BOOT", "-i", VOLUME_ID, str(image), size])
        os.chmod(image, 0o600)
        made = [f"::{d}" for d in sorted(_parents(folders))]
        if made:
            tools.run([tools.require("mmd", "mtools"), "-i", str(image), *made], env=MTOOLS_ENV)
        for folder in folders:
            files = sorted(str(stage / p) for p in paths.values() if str(p.parent) == folder)
            target = "::" if folder == "." else f"::{folder}/"
            tools.run([mcopy, "-i", str(image), "-m", *files, target], env=MTOOLS_ENV)
        image.replace(dest)
    return dest


def _parents(folders: list[str]) -> set[str]:
    """Every folder to make, parents included (`EFI`, `EFI/BOOT`), not the root."""
    out: set[str] = set()
    for folder in folders:
        path = PurePosixPath(folder)
        out.update(str(p) for p in (path, *path.parents) if str(p) != ".")
    return out
