"""arm64 UEFI HTTP boot without iPXE: a RAM-disk image with GRUB, kernel and initramfs.

EDK2's HTTP boot (AAVMF, and arm64 servers' firmware built on it) downloads a
URL ending in `.img` as a RAM disk and starts `EFI/BOOT/BOOTAA64.EFI` from it.
corral's DHCP names `http://SERVER:PORT/boot/arm64-efi/boot.img` to arm64
HTTP boot clients (option 93 = 19, `corral.boot.firmware`). The image holds
Debian's signed removable-media GRUB (`grubaa64.efi`, which reads
`EFI/debian/grub.cfg` from the device it was started from), the node image's
kernel, corral's initramfs, and the node's grub.cfg (`corral.boot.grub`) with
a fresh single-use boot token.

Found by the node: the caller's address names the node (as for the TFTP
grub.cfg), and the token is minted only for one of the node's own addresses
(`tftpboot.token_boot`). Bounded work: the image without its grub.cfg is made
once per (kernel, initramfs, GRUB) and kept 0600 under
`$CORRAL_HOME/efi-boot/` (the newest few); its grub.cfg is a fixed-size slot
of padding, and each GET streams the image with the node's config written
over that slot, so a boot costs one read of the image and the token is never
written to disk. HEAD (EDK2 asks for the size first) mints nothing.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from corral.app import Corral
from corral.boot import grub
from corral.boot.firmware import ARM64_HTTP_IMAGE
from corral.images.bootimg import Member, build_boot_img
from corral.images.errors import ImageError
from corral.images.foreign import ARM64_LOADER_PACKAGE, cached
from corral.images.records import Artifacts
from corral.services.http.boot import token_files
from corral.services.http.context import context_of
from corral.services.http.nodeauth import source_ip
from corral.services.tftpboot import ServerUrls, node_artifacts
from corral.store.boards import node_name_by_ip

log = logging.getLogger("corral.http.efiboot")
routes = web.RouteTableDef()
IMAGES = "efi_boot_images"
STATE_DIR = "efi-boot"
KEEP = 4  # base images kept: one per packed arm64 image in use, and the previous ones
GRUB_FILE = "usr/lib/grub/arm64-efi-signed/grubaa64.efi.signed"
LOADER = "EFI/BOOT/BOOTAA64.EFI"
GRUB_CFG = "EFI/debian/grub.cfg"  # grubaa64.efi's prefix is /EFI/debian on its own device
SLOT_SIZE = 4096  # bytes of grub.cfg: a config with a long kernel command line fits
CHUNK = 1 << 20
CONTENT_TYPE = "application/vnd.efi-img"  # EDK2: boot the download as a RAM disk


@dataclass(frozen=True)
class BaseImage:
    """A RAM-disk image whose grub.cfg is the padding slot at byte `slot`."""

    path: Path
    slot: int
    size: int


def slot_text(key: str) -> bytes:
    """The placeholder grub.cfg: unique in its image (it names the image's key)."""
    head = f"# corral: grub.cfg slot {key}\n".encode()
    return head + b"#" * (SLOT_SIZE - len(head) - 1) + b"\n"


def filled(config: str) -> bytes:
    """`config` padded with newlines to the slot's size (the file's size is fixed)."""
    data = config.encode()
    if len(data) > SLOT_SIZE:
        raise ImageError(f"grub.cfg of {len(data)} bytes does not fit the {SLOT_SIZE}-byte slot")
    return data + b"\n" * (SLOT_SIZE - len(data))


def find_slot(path: Path, slot: bytes) -> int:
    """The byte offset of the slot in the image: it must be there once, in one piece."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        at = data.find(slot)
        if at < 0 or data.find(slot, at + 1) >= 0:
            raise ImageError(f"{path.name}: grub.cfg is not one contiguous slot in the image")
        return at


def splice(chunk: bytes, offset: int, slot: int, config: bytes) -> bytes:
    """`chunk` (the image's bytes from `offset`) with `config` written over the slot."""
    start = max(offset, slot)
    end = min(offset + len(chunk), slot + len(config))
    if start >= end:
        return chunk
    a, b = start - offset, end - offset
    return chunk[:a] + config[start - slot : end - slot] + chunk[b:]


class EfiImages:
    """The base images of one server (one lock: an image takes a second or two to make)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.known: dict[str, BaseImage] = {}

    def base(self, arts: Artifacts, home: Path, loader: Path) -> BaseImage:
        """The image for these kernel, initramfs and GRUB: made on first use, then kept."""
        inputs = f"{arts.kernel.sha256} {arts.initramfs.sha256} {loader.resolve()}"
        key = hashlib.sha256(inputs.encode()).hexdigest()[:24]
        with self.lock:
            path = self.folder / f"{key}.img"
            found = self.known.get(key)
            if path.exists():
                os.utime(path)  # recently used (also a server's first use): pruned last
                if found is not None:
                    return found
            else:
                self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                members: dict[str, Member] = {
                    LOADER: loader,
                    GRUB_CFG: slot_text(key),
                    grub.KERNEL: arts.kernel.path(home),
                    grub.INITRAMFS: arts.initramfs.path(home),
                }
                build_boot_img(path, members)
                log.info("arm64 HTTP boot image %s made (kernel, initramfs, GRUB)", path.name)
                self._prune()
            found = BaseImage(path, find_slot(path, slot_text(key)), path.stat().st_size)
            self.known[key] = found
            return found

    def _prune(self) -> None:
        images = sorted(self.folder.glob("*.img"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in images[KEEP:]:
            old.unlink(missing_ok=True)
            self.known.pop(old.stem, None)


def prepare(
    corral: Corral, urls: ServerUrls, images: EfiImages, ip: str, mint: bool
) -> tuple[BaseImage, bytes | None]:
    """The caller's base image and (for a GET) its grub.cfg with a new boot token."""
    with corral.store.reading() as conn:
        name = node_name_by_ip(conn, ip, time.time())
    if name is None:
        log.info("arm64 HTTP boot from %s: no node has that address", ip)
        raise web.HTTPNotFound(text=f"{ip} is no node's address (corral node discovered)\n")
    found = node_artifacts(corral, name)
    if found is None:
        raise web.HTTPNotFound(text=f"node {name}'s image is not packed: corral image pack\n")
    root = cached(ARM64_LOADER_PACKAGE, "arm64")
    if root is None:
        raise web.HTTPServiceUnavailable(text="no arm64 GRUB yet: pack an arm64 image\n")
    home = corral.settings.paths.home
    try:
        base = images.base(found[1], home, root / GRUB_FILE)
    except ImageError as exc:
        log.error("arm64 HTTP boot image for node %s: %s", name, exc)
        raise web.HTTPServiceUnavailable(text=f"cannot make the boot image: {exc}\n") from None
    if not mint:
        return base, None
    files = token_files(corral, urls, name, ip)
    log.info("arm64 HTTP boot image for node %s at %s (with a boot token)", name, ip)
    return base, filled(grub.node_config(name, files, folder="/"))


@routes.get(f"/boot/{ARM64_HTTP_IMAGE}")
async def ram_disk(request: web.Request) -> web.StreamResponse:
    """The calling node's RAM-disk image (module docstring); HEAD gives its size only."""
    ctx = context_of(request)
    home = ctx.corral.settings.paths.home
    images: EfiImages = ctx.extra.setdefault(IMAGES, EfiImages(home / STATE_DIR))
    urls = ServerUrls(ctx.server_url, ctx.api_url)
    head = request.method == "HEAD"
    base, config = await ctx.run(prepare, ctx.corral, urls, images, source_ip(request), not head)
    response = web.StreamResponse(headers={"Cache-Control": "no-store"})
    response.content_type = CONTENT_TYPE
    response.content_length = base.size
    await response.prepare(request)
    if config is None:
        return response
    with open(base.path, "rb") as image:
        offset = 0
        while chunk := await ctx.run(image.read, CHUNK):
            await response.write(splice(chunk, offset, base.slot, config))
            offset += len(chunk)
    await response.write_eof()
    return response
