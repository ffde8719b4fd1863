"""TFTP files for Raspberry Pi 4 and 5 network boot, per node (a `FileProvider`).

A board asks for `<serial>/<file>` (or `<mac-with-dashes>/<file>`); the
prefix names the node (`rpi_serial`, or an interface MAC). Then:

- `config.txt`, `cmdline.txt`: rendered by `corral.boot.rpi`; `cmdline.txt`
  carries the node's `corral.*` arguments and a fresh single-use boot token,
  minted only when the request comes from one of the node's own addresses
  (as for iPXE scripts, `services/http/boot.py`);
- `kernel8.img`, `kernel_2712.img`: the image's kernel artifact;
- `corral-initramfs.img`: the image's corral initramfs (arm64 for an arm64 image);
- anything else: the image's own firmware files and device trees.

Every file is served without block-number rollover (the bootloader cannot
count past 65535 blocks): a larger one is refused with a log line saying so.
An unknown prefix is "file not found" at once, so the bootloader's prefix
fallback happens immediately, and the log says how to claim the board.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from corral.app import Corral
from corral.boot import rpi
from corral.images import api
from corral.images.records import Artifacts
from corral.protocols.tftp import BytesSource, FileSource, NoRollover
from corral.services.tftpboot import ServerUrls, node_artifacts, open_file, token_boot
from corral.store.boards import node_name_by_rpi_serial
from corral.store.inventory import node_name_by_mac

log = logging.getLogger("corral.tftp.rpi")
Address = tuple[str, int]


class RpiFiles:
    """The per-node Raspberry Pi boot files of one corral server."""

    def __init__(self, corral: Corral, urls: ServerUrls) -> None:
        self.corral = corral
        self.urls = urls

    def match(self, path: str) -> bool:
        return rpi.split_path(path) is not None

    def open(self, path: str, client: Address) -> FileSource | None:
        request = rpi.split_path(path)
        if request is None:
            return None
        source = self._open(request, client[0])
        return None if source is None else NoRollover(source)

    def _open(self, request: rpi.PiRequest, ip: str) -> FileSource | None:
        name = board_node(self.corral, request)
        if name is None:
            if request.file in ("start4.elf", "config.txt"):
                hint = "--rpi-serial" if request.serial else "--mac"
                log.info(
                    "unknown Raspberry Pi %s at %s: corral node set NODE %s %s",
                    request.prefix,
                    ip,
                    hint,
                    request.serial or request.mac,
                )
            return None
        if request.file == "cmdline.txt":
            files = token_boot(self.corral, self.urls, name, ip)
            if isinstance(files, str):
                log.info("Raspberry Pi node %s cannot boot: %s", name, files)
                return None
            log.info("cmdline.txt for Raspberry Pi node %s at %s (with a boot token)", name, ip)
            return BytesSource(rpi.cmdline_txt(files.kernel_args).encode())
        found = node_artifacts(self.corral, name)
        if found is None:
            log.info("Raspberry Pi %s (node %s): no packed image", request.prefix, name)
            return None
        image, arts = found
        if request.file == "config.txt":
            return BytesSource(rpi.config_txt(name).encode())
        home = self.corral.settings.paths.home
        if request.file in rpi.KERNEL_NAMES:
            return open_file(arts.kernel.path(home))
        if request.file == rpi.INITRAMFS_NAME:
            return open_file(arts.initramfs.path(home))
        path = firmware_file(api.rootfs(self.corral, image), request.file, arts)
        return None if path is None else open_file(path)


def board_node(corral: Corral, request: rpi.PiRequest) -> str | None:
    """The node a board's prefix names: by `rpi_serial`, or by an interface MAC."""
    with corral.store.reading() as conn:
        if request.serial is not None:
            return node_name_by_rpi_serial(conn, request.serial)
        return node_name_by_mac(conn, request.mac or "")


def firmware_file(root: Path, file: str, arts: Artifacts) -> Path | None:
    """The image's own copy of a firmware file or device tree, never outside the image."""
    real_root = Path(os.path.realpath(root))
    for candidate in rpi.firmware_candidates(file, arts.kernel_version):
        real = Path(os.path.realpath(real_root / candidate))
        if real_root in real.parents and real.is_file():
            return real
    return None


def firmware_names(root: Path, arts: Artifacts) -> list[str]:
    """The firmware files and device trees of the image that a boot.img carries."""
    names: set[str] = set()
    for d in rpi.firmware_dirs(arts.kernel_version):
        folder = root / d
        if folder.is_dir() and not folder.is_symlink():
            names.update(p.name for p in folder.iterdir() if rpi.in_boot_img(p.name))
    return sorted(n for n in names if firmware_file(root, n, arts) is not None)
