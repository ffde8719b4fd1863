"""What a known node boots: pure decisions from its effective settings.

The kernel command line carries the server URL and the node's identity, so the
corral initramfs needs nothing else to find its image and overlay.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.boot.ipxe import BootFiles
from corral.inventory.merge import EffectiveNode


@dataclass(frozen=True)
class ImageBoot:
    """An image's boot artifacts as URLs (from the image's artifact record)."""

    kernel_url: str
    initramfs_url: str


def kernel_args(eff: EffectiveNode, mac: str, server_url: str) -> tuple[str, ...]:
    """The node's own arguments, then corral's (later ones win in the initramfs)."""
    mode = eff.settings.boot or "stateless"
    ours = [
        f"corral.server={server_url}",
        f"corral.node={eff.name}",
        f"corral.mac={mac}",
        f"corral.boot={mode}",
    ]
    return (*eff.settings.kernel_args, *ours)


def boot_files(
    eff: EffectiveNode, mac: str, server_url: str, image: ImageBoot | None
) -> BootFiles | str:
    """The files to boot, or the reason the node cannot boot yet."""
    if eff.settings.image is None:
        return f"node {eff.name} has no image: corral node set {eff.name} --image NAME"
    if image is None:
        return (
            f"image {eff.settings.image} of node {eff.name} is not packed yet: "
            f"corral image pack {eff.settings.image}"
        )
    return BootFiles(
        kernel_url=image.kernel_url,
        initrd_urls=(image.initramfs_url,),
        kernel_args=("initrd=initrd0", *kernel_args(eff, mac, server_url)),
    )
