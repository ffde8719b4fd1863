"""A Raspberry Pi `boot.img`: a FAT file system image holding a board's boot files.

HTTP boot (bootloader mode 7) downloads `boot.img` and `boot.sig` and boots
from the image as if it were the SD card's boot partition. Made as the
Raspberry Pi's own `rpi-make-boot-image` (usbboot) makes it: `mkfs.fat -C`
(dosfstools) of a size that fits the files, then `mcopy` (mtools) of the
files into it, so no loop device or mount is needed and it runs unprivileged.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

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


def build_boot_img(dest: Path, members: Mapping[str, Member]) -> Path:
    """Write a FAT image at `dest` (0600, by atomic rename) holding `members` at its root.

    `members` maps a file name in the image to a file on disk or its bytes.
    """
    mkfs = tools.require("mkfs.fat", "dosfstools")
    mcopy = tools.require("mcopy", "mtools")
    for name in members:
        if not name or "/" in name or name.startswith("."):
            raise ImageError(f"boot.img member {name!r}: plain file names only")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".bootimg-") as tmp:  # 0700
        stage = Path(tmp) / "files"
        stage.mkdir()
        for name, content in members.items():
            if isinstance(content, bytes):
                (stage / name).write_bytes(content)
            else:
                (stage / name).symlink_to(content.resolve())  # mcopy reads through it
        image = Path(tmp) / "boot.img"
        size = str(image_size_kib(members))
        tools.run([mkfs, "-C", "-n", "BOOT", "-i", VOLUME_ID, str(image), size])
        os.chmod(image, 0o600)
        files = [str(stage / name) for name in sorted(members)]
        tools.run([mcopy, "-i", str(image), "-m", *files, "::"], env=MTOOLS_ENV)
        image.replace(dest)
    return dest
