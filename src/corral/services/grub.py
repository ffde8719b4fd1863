"""TFTP files for arm64 UEFI network boot through Debian's GRUB (a `FileProvider`).

- `arm64-efi/grubnetaa64.efi`: Debian's signed GRUB network image, from the
  package cache that packing an arm64 image fills (`images.foreign`);
- any `.../grub.cfg`: the calling node's config (`corral.boot.grub`), found
  by the client's address, with a fresh boot token (`tftpboot.token_boot`);
- `corral-boot/<node>/kernel`, `.../initramfs`: the node image's kernel and
  corral's initramfs for it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from corral.app import Corral
from corral.boot import grub
from corral.boot.firmware import ARM64_LOADER
from corral.images.foreign import ARM64_LOADER_PACKAGE, cached
from corral.protocols.tftp import BytesSource, FileSource
from corral.services.tftpboot import ServerUrls, node_artifacts, open_file, token_boot
from corral.store.boards import node_name_by_ip

log = logging.getLogger("corral.tftp.grub")
Address = tuple[str, int]
LOADER_FILE = "usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed"


class GrubFiles:
    """The arm64 GRUB loader and per-node GRUB configs of one corral server."""

    def __init__(self, corral: Corral, urls: ServerUrls) -> None:
        self.corral = corral
        self.urls = urls

    def match(self, path: str) -> bool:
        return (
            path == ARM64_LOADER
            or path.endswith("grub.cfg")
            or path.startswith(f"{grub.BOOT_DIR}/")
        )

    def open(self, path: str, client: Address) -> FileSource | None:
        if path == ARM64_LOADER:
            return self._loader()
        if path.endswith("grub.cfg"):
            return BytesSource(self._config(client[0]).encode())
        parts = path.split("/")
        if len(parts) != 3:
            return None
        found = node_artifacts(self.corral, parts[1])
        if found is None:
            return None
        arts = found[1]
        home = self.corral.settings.paths.home
        if parts[2] == grub.KERNEL:
            return open_file(arts.kernel.path(home))
        if parts[2] == grub.INITRAMFS:
            return open_file(arts.initramfs.path(home))
        return None

    def _loader(self) -> FileSource | None:
        root = cached(ARM64_LOADER_PACKAGE, "arm64")
        if root is None:
            log.warning("no arm64 GRUB yet: pack an arm64 image (corral image pack NAME)")
            return None
        return open_file(Path(root) / LOADER_FILE)

    def _config(self, ip: str) -> str:
        with self.corral.store.transaction() as conn:
            name = node_name_by_ip(conn, ip, time.time())
        if name is None:
            return grub.wait_config(f"{ip} is no node's address (corral node discovered)")
        files = token_boot(self.corral, self.urls, name, ip)
        if isinstance(files, str):
            return grub.wait_config(files)
        log.info("grub.cfg for arm64 node %s at %s (with a boot token)", name, ip)
        return grub.node_config(name, files)
