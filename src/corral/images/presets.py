"""Package presets for `corral image build --debootstrap`: what an image needs to boot as a node.

debootstrap's minbase has no init, no `ip`, no dbus and no kernel, so a bare
minbase tree cannot boot. A preset names the packages on top of minbase:

    minimal  boots to a console on the network: systemd as init, udev, kmod,
             iproute2, the kernel for the image's architecture. The network is
             systemd-networkd (part of systemd), the stack corral's `network`
             overlay configures; it is enabled at build time.
    server   (default) minimal plus what a managed server runs: dbus
             (hostnamectl, logind), openssh-server, chrony, ca-certificates,
             python3 (the node agent is a Python 3 stdlib program; python3-minimal
             lacks most of the standard library, json and urllib among it),
             rsync (`corral image grab` copies a running node with it) and
             GRUB (grub2-common with the BIOS and UEFI platform files on amd64:
             stateful installs put a bootloader on the disk from the image's
             own packages).
    slurm    server plus the Slurm daemons (slurmd, slurmctld), munge, Open MPI and
             NFS (client and server: the node tagged nfs=server exports the
             cluster's shares), for workload nodes; the `slurm` overlay set configures them.

`--include`/`--exclude` add to or take from the chosen preset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from corral.images.errors import ImageError

# the kernel metapackage of each Debian architecture
KERNEL_PACKAGES = {
    "amd64": "linux-image-amd64",
    "arm64": "linux-image-arm64",
    "armhf": "linux-image-armmp",
    "i386": "linux-image-686",
    "riscv64": "linux-image-riscv64",
    "ppc64el": "linux-image-powerpc64le",
}
# grub-install and update-grub are in grub2-common; the -bin packages hold the platform files
BOOTLOADERS = {
    "amd64": ("grub2-common", "grub-pc-bin", "grub-efi-amd64-bin"),
    "arm64": ("grub2-common", "grub-efi-arm64-bin"),
}
INIT_PACKAGE = "systemd-sysv"
# units the preset enables at build time (an overlay cannot carry the symlinks)
ENABLED_UNITS = ("systemd-networkd.service",)

MINIMAL = (INIT_PACKAGE, "udev", "kmod", "iproute2")
# rsync: `corral image grab` copies a running node with it (over ssh)
SERVER = (
    *MINIMAL,
    "dbus",
    "openssh-server",
    "chrony",
    "ca-certificates",
    "python3",
    "rsync",
)
# one image for every Slurm node: the slurm overlay starts slurmctld on the controller only
# the NFS server too: the node tagged nfs=server exports the cluster's shares (the nfs overlay)
SLURM = (
    *SERVER,
    "munge",
    "slurmd",
    "slurmctld",
    "slurm-client",
    "openmpi-bin",
    "nfs-common",
    "nfs-kernel-server",
)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    packages: tuple[str, ...]
    kernel: bool = True
    bootloader: bool = False


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("minimal", "systemd, udev, iproute2, the kernel: boots to a console", MINIMAL),
        Preset(
            "server",
            "minimal + dbus, openssh-server, chrony, ca-certificates, python3, rsync, GRUB",
            SERVER,
            bootloader=True,
        ),
        Preset(
            "slurm",
            "server + munge, slurmd, slurmctld, slurm-client, openmpi-bin, NFS client and server",
            SLURM,
            bootloader=True,
        ),
    )
}
DEFAULT_PRESET = "server"


def kernel_package(arch: str) -> str:
    """The kernel metapackage for a Debian architecture (linux-image-amd64, ...)."""
    try:
        return KERNEL_PACKAGES[arch]
    except KeyError:
        raise ImageError(f"no Debian kernel package known for architecture {arch!r}") from None


def packages(
    preset: str, arch: str, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[str]:
    """The packages to add to minbase: the preset's for `arch`, plus `include`, minus `exclude`."""
    chosen = PRESETS.get(preset)
    if chosen is None:
        raise ImageError(f"unknown preset {preset!r}: one of {', '.join(PRESETS)}")
    names = list(chosen.packages)
    if chosen.kernel:
        names.append(kernel_package(arch))
    if chosen.bootloader:
        names += BOOTLOADERS.get(arch, ())
    names += include
    dropped = set(exclude)
    return sorted({n for n in names if n not in dropped})
