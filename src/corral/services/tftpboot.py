"""What firmware that boots over TFTP alone gets: shared by the Raspberry Pi and GRUB files.

`token_boot` is the TFTP twin of the iPXE script route: the node's boot files
with a fresh single-use boot token (`corral.token=`), minted only when the
request comes from one of the node's own addresses (docs/security.md).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from corral.app import Corral
from corral.boot.decide import ImageBoot, boot_files, with_boot_token
from corral.boot.ipxe import BootFiles
from corral.images.records import Artifacts
from corral.protocols.tftp import FileSource, OpenFileSource
from corral.protocols.tftp.packets import ErrorCode, TftpError
from corral.services.http.nodeself import artifact_url, packed
from corral.store.boards import node_mac
from corral.store.credentials import mint_boot_token, node_addresses
from corral.store.inventory import load_node_view

log = logging.getLogger("corral.tftp.boot")


@dataclass(frozen=True)
class ServerUrls:
    """Where a TFTP-booted node reaches corral: artifacts at `server` (plain HTTP, signed),
    the API at `api` (HTTPS when `corral serve` has TLS; the initramfs then refuses plain
    HTTP), the same URLs an iPXE script gets."""

    server: str
    api: str = ""

    @property
    def node(self) -> str:
        """The `corral.server=` of the kernel command line."""
        return self.api or self.server


def token_boot(corral: Corral, urls: ServerUrls, name: str, ip: str) -> BootFiles | str:
    """The node's boot files carrying a new boot token, or why it cannot boot.

    Raises TftpError (access violation) when `ip` is not one of the node's addresses.
    """
    now = time.time()
    with corral.store.transaction() as conn:
        if ip not in node_addresses(conn, name, now):
            log.warning("no boot token for node %s: %s is not its address", name, ip)
            raise TftpError(ErrorCode.ACCESS_VIOLATION, f"{ip} is not node {name}'s address")
        view = load_node_view(conn, name)
        mac = node_mac(conn, name, ip)
        if view is None or mac is None:
            return f"node {name} has no MAC address to boot with"
        eff = view.effective(name)
        arts = packed(conn, eff.settings.image)
        image = None if arts is None else image_boot(urls.server, arts)
        files = boot_files(eff, mac, urls.node, image)
        if isinstance(files, str):
            return files
        token = mint_boot_token(conn, name, mac, ip, now)
    return with_boot_token(files, token)


def node_artifacts(corral: Corral, name: str) -> tuple[str, Artifacts] | None:
    """(image name, packed artifacts) of the node's image, if it has a packed one."""
    with corral.store.transaction() as conn:
        view = load_node_view(conn, name)
        image = view.effective(name).settings.image if view else None
        arts = packed(conn, image)
    return None if image is None or arts is None else (image, arts)


def image_boot(server_url: str, arts: Artifacts) -> ImageBoot:
    return ImageBoot(
        artifact_url(server_url, arts.kernel.sha256),
        artifact_url(server_url, arts.initramfs.sha256),
    )


def open_file(path: Path) -> FileSource | None:
    try:
        return OpenFileSource(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
    except OSError:
        return None
