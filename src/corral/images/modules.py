"""Kernel modules taken from an image for the initramfs: names, dependencies, copies.

Dependencies come from each module's own `depends=` field (modinfo), so an
image whose modules.dep was never generated (a kernel unpacked with dpkg -x)
works too. Compressed modules are decompressed on the way, because busybox
modprobe cannot load .ko.xz/.ko.zst, and `depmod -b` indexes the result.
"""

from __future__ import annotations

import gzip
import lzma
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import zstandard

from corral.images import tools

# the NIC drivers (with the PHY drivers some need): not in the first part of the
# initramfs but in its NIC pack, of which a node booted by iPXE gets only what its own
# NIC needs (`corral.images.nicpack`), every other node the whole set
NIC_MODULES = (
    "virtio_net", "virtio_pci", "e1000", "e1000e", "igb", "ixgbe", "i40e", "mlx4_en",
    "mlx5_core", "bnxt_en", "tg3", "r8169", "genet", "mdio_bcm_unimac", "broadcom",
)  # fmt: skip
# what every node's first part keeps: the RAM root's overlay, and packet sockets for DHCP
BASE_MODULES = ("overlay", "af_packet")
# what a node needs to reach the server: the base and every NIC driver
NETBOOT_MODULES = NIC_MODULES + BASE_MODULES
# what only a stateful install or service mode needs: disks and their file systems
# (the initramfs' second part, `initramfs.split_tools`)
DISK_MODULES = (
    "virtio_blk", "virtio_scsi", "nvme", "ahci", "sd_mod", "ext4", "xfs", "crc32c_generic",
    "crc32c_intel", "vfat", "nls_cp437", "nls_ascii",
)  # fmt: skip
BOOT_MODULES = NETBOOT_MODULES + DISK_MODULES
SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")
INDEX_FILES = ("modules.order", "modules.builtin", "modules.builtin.modinfo")


def module_name(filename: str) -> str:
    for suffix in SUFFIXES[::-1]:
        if filename.endswith(suffix):
            filename = filename.removesuffix(suffix)
            break
    return filename.replace("-", "_")


@dataclass
class ModuleTree:
    """The modules of one kernel version inside an image."""

    directory: Path  # <image>/lib/modules/<version>

    def index(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for path in sorted((self.directory / "kernel").rglob("*.ko*")):
            if path.name.endswith(SUFFIXES):
                found.setdefault(module_name(path.name), path)
        return found

    def builtin(self) -> set[str]:
        path = self.directory / "modules.builtin"
        if not path.is_file():
            return set()
        return {module_name(Path(line).name) for line in path.read_text().split()}

    def closure(self, wanted: Iterable[str]) -> tuple[dict[str, Path], list[str]]:
        """Modules for `wanted` with all their dependencies, and the names not found."""
        index, builtin = self.index(), self.builtin()
        chosen: dict[str, Path] = {}
        missing: list[str] = []
        todo = [module_name(w) for w in wanted]
        while todo:
            name = todo.pop()
            if name in chosen or name in builtin:
                continue
            if name not in index:
                missing.append(name)
                continue
            chosen[name] = index[name]
            todo += depends(index[name])
        return chosen, sorted(set(missing))


def depends(path: Path) -> list[str]:
    out = tools.run(["modinfo", "-F", "depends", str(path)]).strip()
    return [module_name(d) for d in out.split(",") if d]


def read_module(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    return data


def copy_modules(tree: ModuleTree, chosen: dict[str, Path], dest_root: Path, version: str) -> None:
    """Copy `chosen` (uncompressed) under dest_root/lib/modules/VERSION and run depmod there."""
    dest = dest_root / "lib" / "modules" / version
    for path in chosen.values():
        rel = path.relative_to(tree.directory)
        target = dest / rel.parent / (path.name.split(".ko")[0] + ".ko")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_module(path))
    for name in INDEX_FILES:
        if (tree.directory / name).is_file():
            shutil.copyfile(tree.directory / name, dest / name)
    dest.mkdir(parents=True, exist_ok=True)
    tools.run([tools.require("depmod", "kmod"), "-b", str(dest_root), version])
