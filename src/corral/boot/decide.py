"""What a known node boots: pure decisions from its effective settings.

The kernel command line carries the server URL and the node's identity, so the
corral initramfs needs nothing else to find its image and overlay. With several
servers, `corral.servers=` lists every server's API URL (this one first): the
initramfs tries the next when one fails.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from corral.boot.ipxe import BootFiles
from corral.inventory.merge import EffectiveNode
from corral.inventory.models import BootMode

# in a node's or profile's kernel_args: boot with every NIC driver of the NIC set, not
# only those of the NIC iPXE booted from (the one initramfs file GRUB and TFTP boots get)
FULL_NICS_ARG = "corral.nics=all"


@dataclass(frozen=True)
class ImageBoot:
    """An image's boot artifacts as URLs (from the image's artifact record)."""

    kernel_url: str
    initramfs_url: str  # the first part and the full NIC pack in one file
    # the same two files on the other servers, tried in turn: (kernel URL, initramfs URL)
    mirrors: tuple[tuple[str, str], ...] = ()
    # iPXE: the first part and the NIC pack for the NIC it booted from, as two initrds,
    # on this server and on each other in turn (`corral.images.nicpack`); () for none
    split: tuple[tuple[str, str], ...] = ()


def kernel_args(
    eff: EffectiveNode, mac: str, server_url: str, servers: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The node's own arguments, then corral's (later ones win in the initramfs)."""
    mode = eff.settings.boot or "stateless"
    ours = [
        f"corral.server={server_url}",
        f"corral.node={eff.name}",
        f"corral.mac={mac}",
        f"corral.boot={mode}",
    ]
    if len(servers) > 1:
        ours.append(f"corral.servers={','.join(servers)}")
    return (*eff.settings.kernel_args, *ours)


def boot_files(
    eff: EffectiveNode,
    mac: str,
    server_url: str,
    image: ImageBoot | None,
    servers: tuple[str, ...] = (),
) -> BootFiles | str:
    """The files to boot, or the reason the node cannot boot yet.

    `servers`: every server's API URL, `server_url` first (several servers).
    """
    if eff.settings.image is None:
        return f"node {eff.name} has no image: corral node set {eff.name} --image NAME"
    if image is None:
        return (
            f"image {eff.settings.image} of node {eff.name} is not packed yet: "
            f"corral image pack {eff.settings.image}"
        )
    args = kernel_args(eff, mac, server_url, servers)
    if image.split and FULL_NICS_ARG not in eff.settings.kernel_args:
        kernels = [image.kernel_url, *(kernel for kernel, _ in image.mirrors)]
        return BootFiles(
            kernel_url=image.kernel_url,
            initrd_urls=image.split[0],
            # a UEFI kernel's stub loads the initrds named here
            kernel_args=("initrd=initrd0", "initrd=initrd1", *args),
            mirrors=tuple(zip(kernels[1:], image.split[1:], strict=False)),
        )
    return BootFiles(
        kernel_url=image.kernel_url,
        initrd_urls=(image.initramfs_url,),
        kernel_args=("initrd=initrd0", *args),
        mirrors=tuple((kernel, (initrd,)) for kernel, initrd in image.mirrors),
    )


def with_boot_token(files: BootFiles, token: str) -> BootFiles:
    """The same boot, carrying this boot's single-use token for the initramfs.

    `corral.token=` is spent once for the node's credential (docs/security.md).
    """
    return replace(files, kernel_args=(*files.kernel_args, f"corral.token={token}"))


def boot_mode(eff: EffectiveNode, override: BootMode | None = None) -> BootMode:
    """The mode of this boot: a runtime override (`corral node service`) wins."""
    return override or eff.settings.boot or "stateless"


def with_mode(eff: EffectiveNode, mode: BootMode) -> EffectiveNode:
    """`eff` booting in `mode` (for an override); the inventory is not changed."""
    settings = eff.settings.model_copy(update={"boot": mode})
    return EffectiveNode(node=eff.node, settings=settings, origins=eff.origins)


def boots_from_disk(eff: EffectiveNode, installed: bool, override: BootMode | None) -> bool:
    """A stateful node that finished its install boots from its disk, unless overridden."""
    return installed and boot_mode(eff, override) == "stateful"
