"""Raspberry Pi HTTP boot (bootloader mode 7): `boot.img` and `boot.sig` per board.

With `HTTP_HOST` and `HTTP_PATH=boot/rpi/<serial>` in its EEPROM (`corral rpi
eeprom-config --http`), a board's bootloader GETs `boot.sig` and `boot.img`
there over plain HTTP, checks the signature with the public key in its
EEPROM, and boots the FAT image as if it were an SD card's boot partition.

The image holds what TFTP would serve (`services/rpi.py`): the node's
config.txt and cmdline.txt, the image's kernel as `kernel8.img`, corral's
arm64 initramfs, the image's start4.elf, fixup4.dat and device trees. Its
cmdline.txt carries a single-use boot token, so each boot gets a new image,
signed with the site key (`images/rpisign.py`), and the token is minted only
for a request from one of the node's own addresses (as for TFTP and iPXE).

One pair is made per boot and the two files must match: the first request
for either builds both, the other one is then served from the same pair, and
a request for a file of the pair already served (the next boot, or a retry)
builds a new one. The pair is kept 0600 under `$CORRAL_HOME/rpi-http/`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from corral.app import Corral
from corral.boot import rpi
from corral.images import api
from corral.images.bootimg import Member, build_boot_img
from corral.images.errors import ImageError
from corral.images.rpisign import sign_boot_file, site_key
from corral.services.http.boot import token_files
from corral.services.http.context import context_of
from corral.services.rpi import board_node, firmware_file, firmware_names
from corral.services.tftpboot import ServerUrls, node_artifacts
from corral.store.credentials import node_addresses

log = logging.getLogger("corral.http.rpi")
routes = web.RouteTableDef()
PAIRS = "rpi_http_pairs"
PAIR_TTL = 120.0  # seconds a half-served pair waits for its other half
STATE_DIR = "rpi-http"


@dataclass
class Pair:
    """One boot's boot.img and boot.sig, and which of them the board has fetched."""

    folder: Path
    made: float
    served: set[str] = field(default_factory=set)


@routes.get("/boot/rpi/{prefix}/{file:boot.img|boot.sig}")
async def http_boot_file(request: web.Request) -> web.StreamResponse:
    """A board's boot.img or boot.sig (mode 7); only to the node's own address."""
    ctx = context_of(request)
    wanted = rpi.split_path(f"{request.match_info['prefix']}/{request.match_info['file']}")
    if wanted is None or wanted.file not in (rpi.BOOT_IMG, rpi.BOOT_SIG):
        raise web.HTTPNotFound(text="not a Raspberry Pi serial or dashed MAC\n")
    ip = request.remote or ""
    urls = ServerUrls(ctx.server_url, ctx.api_url)
    book: PairBook = ctx.extra.setdefault(PAIRS, PairBook())
    pair = await ctx.run(book.pair_for, ctx.corral, urls, wanted, ip, time.time())
    log.info("Raspberry Pi %s at %s: %s", wanted.prefix, ip, wanted.file)
    if wanted.file == rpi.BOOT_SIG:
        return web.Response(text=(pair.folder / rpi.BOOT_SIG).read_text())
    return web.FileResponse(pair.folder / rpi.BOOT_IMG)


class PairBook:
    """The current pair of each board, for the handler threads (one lock: boards boot
    seconds apart, and a pair takes about a second to make)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pairs: dict[str, Pair] = {}

    def pair_for(
        self, corral: Corral, urls: ServerUrls, wanted: rpi.PiRequest, ip: str, now: float
    ) -> Pair:
        """The pair to answer `wanted` from: the current one, or a new one (module docstring)."""
        name = checked_node(corral, wanted, ip, now)
        with self.lock:
            pair = self.pairs.get(wanted.prefix)
            if pair is None or wanted.file in pair.served or now - pair.made > PAIR_TTL:
                pair = Pair(build_pair(corral, urls, name, wanted.prefix, ip), now)
                self.pairs[wanted.prefix] = pair
            pair.served.add(wanted.file)
            return pair


def checked_node(corral: Corral, wanted: rpi.PiRequest, ip: str, now: float) -> str:
    """The board's node, if `ip` is one of its addresses; else 404 or 403."""
    name = board_node(corral, wanted)
    if name is None:
        log.info(
            "unknown Raspberry Pi %s at %s: corral node set NODE --rpi-serial", wanted.prefix, ip
        )
        raise web.HTTPNotFound(
            text=f"no node has board {wanted.prefix}: corral node set NODE --rpi-serial\n"
        )
    with corral.store.reading() as conn:
        if ip not in node_addresses(conn, name, now):
            log.warning("no boot.img for node %s: %s is not its address", name, ip)
            raise web.HTTPForbidden(text=f"{ip} is not node {name}'s address\n")
    return name


def build_pair(corral: Corral, urls: ServerUrls, name: str, prefix: str, ip: str) -> Path:
    """Make the node's boot.img (with a new boot token) and its boot.sig; their folder."""
    found = node_artifacts(corral, name)
    if found is None:
        raise web.HTTPNotFound(text=f"node {name}'s image is not packed: corral image pack\n")
    image, arts = found
    files = token_files(corral, urls, name, ip)
    home = corral.settings.paths.home
    root = api.rootfs(corral, image)
    members: dict[str, Member] = {
        n: text.encode() for n, text in rpi.boot_img_texts(name, files.kernel_args).items()
    }
    members[rpi.KERNEL_NAMES[0]] = arts.kernel.path(home)
    members[rpi.INITRAMFS_NAME] = arts.initramfs.path(home)
    for fw in firmware_names(root, arts):
        path = firmware_file(root, fw, arts)
        if path is not None:
            members[fw] = path
    folder = home / STATE_DIR / prefix
    try:
        build_boot_img(folder / rpi.BOOT_IMG, members)
        sig = sign_boot_file(folder / rpi.BOOT_IMG, site_key(home))
    except ImageError as exc:
        log.error("boot.img for node %s: %s", name, exc)
        raise web.HTTPServiceUnavailable(text=f"cannot make boot.img: {exc}\n") from None
    tmp = folder / f".{rpi.BOOT_SIG}.tmp"
    tmp.write_text(sig)
    tmp.replace(folder / rpi.BOOT_SIG)
    log.info("boot.img for Raspberry Pi node %s (%s files, with a boot token)", name, len(members))
    return folder
