"""GRUB configuration for arm64 UEFI network boot: pure text, like `boot.ipxe`.

Debian ships no arm64 iPXE, so an arm64 UEFI machine (PXE, client
architecture 11) gets Debian's signed GRUB network image
(`grubnetaa64.efi`, package grub-efi-arm64-signed), fetched for the
architecture when an arm64 image is packed. GRUB reads `$prefix/grub.cfg`
from the TFTP server it came from; corral answers any `.../grub.cfg` with
the calling node's config (by its address), which loads the kernel and
corral's initramfs over the same TFTP server from `corral-boot/<node>/`.
The same config, with its files at the root, is the grub.cfg of the arm64
UEFI HTTP boot RAM disk (`corral.services.http.efiboot`).
"""

from __future__ import annotations

from corral.boot.ipxe import BootFiles

BOOT_DIR = "corral-boot"
KERNEL = "kernel"
INITRAMFS = "initramfs"


def node_config(name: str, files: BootFiles, folder: str | None = None) -> str:
    """Boot `name` at once: its kernel with its arguments, then corral's initramfs.

    Both are read from `folder` of GRUB's device: `/corral-boot/<name>` on the
    TFTP server unless told (`/` on a UEFI HTTP boot RAM disk).
    """
    args = " ".join(a for a in files.kernel_args if not a.startswith("initrd="))
    where = (folder if folder is not None else f"/{BOOT_DIR}/{name}").rstrip("/")
    return "\n".join(
        [
            f"# corral: boot node {name}",
            "set timeout=0",
            f"echo 'corral: booting {name}'",
            f"linux {where}/{KERNEL} {args}",
            f"initrd {where}/{INITRAMFS}",
            "boot",
            "",
        ]
    )


def wait_config(reason: str) -> str:
    """Say why this machine cannot boot yet, wait, and let the firmware try again."""
    return "\n".join([f"# corral: {reason}", f"echo 'corral: {reason}'", "sleep 30", "reboot", ""])
