"""Boot endpoints for firmware (iPXE cannot carry a credential).

`/boot/{mac}.ipxe` gives a known machine its boot script, with this boot's
single-use token on the kernel command line (`corral.token=`, see
`nodeauth`). The token is minted only when the request comes from one of the
node's own addresses (its reserved IP, or a live lease of its MAC), and only
from that address can it be spent, so a host elsewhere on the network gets
no token and changes nothing. Fetching the script changes no state: the boot
starts (`pxe`) when the initramfs spends the token.

An unknown machine is recorded as discovered and gets a menu of unassigned
node names (Luna's way) or "register and wait". Adopting through the menu
needs a one-time enrollment code that an admin made (`corral node
enroll-code`), or the admin token, and only ever claims a node that has no
MAC yet.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from corral.app import Corral
from corral.boot import ipxe
from corral.boot.decide import ImageBoot, boot_files, boots_from_disk, with_boot_token, with_mode
from corral.boot.ipxe import BootFiles
from corral.images.records import Artifacts
from corral.inventory.errors import InventoryError
from corral.inventory.types import check_mac_or_error
from corral.protocols.tftp.packets import TftpError
from corral.services.http.artifacts import file_in_root
from corral.services.http.auth import is_admin
from corral.services.http.context import HttpContext, context_of
from corral.services.http.nodeauth import source_ip
from corral.services.http.nodeself import artifact_url, packed
from corral.services.tftpboot import ServerUrls, token_boot
from corral.store.bootplan import boot_plan
from corral.store.credentials import mint_boot_token, node_addresses, spend_enroll_code
from corral.store.inventory import (
    is_unassigned,
    load_node_view,
    node_name_by_mac,
    unassigned_nodes,
)
from corral.store.runtime import record_discovered

log = logging.getLogger("corral.http.boot")
routes = web.RouteTableDef()
MENU_LIMIT = 40
MAX_CODE = 64
PCI_IDS = "${pci/${netX/busloc}.0.2}:${pci/${netX/busloc}.2.2}"


def ipxe_response(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/plain", headers={"Cache-Control": "no-store"})


def script_for(ctx: HttpContext, mac: str, ip: str) -> str:
    now = time.time()
    retry = f"{ctx.server_url}/boot/{mac}.ipxe"
    with ctx.corral.store.transaction() as conn:
        name = node_name_by_mac(conn, mac)
        if name is None:
            record_discovered(conn, mac, {"source": "ipxe"}, now)
            return ipxe.discovery_menu(mac, ctx.server_url, unassigned_nodes(conn, MENU_LIMIT))
        if ip not in node_addresses(conn, name, now):
            log.warning("no boot token for %s (node %s): %s is not its address", mac, name, ip)
            return ipxe.wait_script(f"address {ip} is not node {name}'s", retry, seconds=30)
        view = load_node_view(conn, name)
        assert view is not None
        eff = view.effective(name)
        plan = boot_plan(conn, name)
        if boots_from_disk(eff, plan.installed is not None, plan.override):
            return ipxe.local_disk_script(name, retry)
        if plan.override:
            eff = with_mode(eff, plan.override)
        arts = packed(conn, eff.settings.image)
        image = None if arts is None else image_boot(ctx.http_bases, arts)
        files = boot_files(eff, mac, ctx.node_url, image, tuple(ctx.api_bases))
        if isinstance(files, str):
            return ipxe.wait_script(files, retry, seconds=30)
        token = mint_boot_token(conn, name, mac, ip, now)
    return ipxe.node_script(name, with_boot_token(files, token))


def image_boot(bases: list[str], arts: Artifacts) -> ImageBoot:
    """Kernel and initramfs at the first of `bases`, and at each other server in turn.

    With a NIC pack, iPXE also gets the first part and the URL of the pack for its
    NIC (`nicpacks`): `${netX/busloc}` is the NIC it booted from, `${pci/LOC.0.2}`
    and `${pci/LOC.2.2}` its PCI vendor and device IDs (4 hex digits each).
    """
    urls = [
        (artifact_url(b, arts.kernel.sha256), artifact_url(b, arts.initramfs.sha256)) for b in bases
    ]
    base, nics = arts.initramfs.base, arts.initramfs.nics
    split: tuple[tuple[str, str], ...] = ()
    if base is not None and nics is not None:
        split = tuple(
            (artifact_url(b, base.sha256), f"{b}/nics/{nics.sha256}?pci={PCI_IDS}") for b in bases
        )
    return ImageBoot(*urls[0], mirrors=tuple(urls[1:]), split=split)


def token_files(corral: Corral, urls: ServerUrls, name: str, ip: str) -> BootFiles:
    """`tftpboot.token_boot` for a handler that builds a boot image: the node's boot files
    with a new token, or 403 (not the node's address) / 404 (why it cannot boot)."""
    try:
        files = token_boot(corral, urls, name, ip)
    except TftpError as exc:
        raise web.HTTPForbidden(text=f"{exc}\n") from None
    if isinstance(files, str):
        raise web.HTTPNotFound(text=f"{files}\n")
    return files


def mac_of(request: web.Request) -> str:
    try:
        return check_mac_or_error(request.match_info["mac"])
    except InventoryError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


@routes.get("/boot/{mac}.ipxe")
async def boot_script(request: web.Request) -> web.Response:
    ctx = context_of(request)
    mac = mac_of(request)
    text = await ctx.run(script_for, ctx, mac, source_ip(request))
    # the second line is the script's comment: never the token
    log.info("boot script for %s from %s: %s", mac, request.remote, text.splitlines()[1])
    return ipxe_response(text)


@routes.get("/boot/{path:ipxe.efi|snponly.efi|arm64-efi/ipxe.efi}")
async def firmware_file(request: web.Request) -> web.StreamResponse:
    """iPXE for UEFI HTTP boot, from the TFTP root (fixed names only)."""
    ctx = context_of(request)
    path = file_in_root(ctx.tftp_root, request.match_info["path"])
    if path is None:
        raise web.HTTPNotFound(text="not installed: run corral init\n")
    log.info("firmware %s to %s", request.match_info["path"], request.remote)
    return web.FileResponse(path)


def adopt_unassigned(ctx: HttpContext, mac: str, name: str, code: str | None) -> str:
    """Adopt `name` for `mac` if the code (None: the admin asked) is good and `name` is free."""
    retry = f"{ctx.server_url}/boot/{mac}.ipxe"
    with ctx.corral.store.transaction() as conn:
        if not is_unassigned(conn, name):
            return ipxe.wait_script(f"node {name} is not free to adopt", retry)
        refused = None if code is None else spend_enroll_code(conn, code, mac, time.time())
    if refused is not None:
        return ipxe.wait_script(f"{refused} (corral node enroll-code makes one)", retry)
    ctx.actions.adopt(mac, name)
    return ipxe.wait_script(f"this machine is now {name}", retry, 1)


@routes.get("/boot/{mac}/adopt/{name}.ipxe")
async def adopt(request: web.Request) -> web.Response:
    """Adopt a free node: `?code=` a one-time enrollment code, or the admin token."""
    ctx = context_of(request)
    mac = mac_of(request)
    code = request.query.get("code", "")[:MAX_CODE]
    admin = await is_admin(request)
    if not admin and not code:
        text = ipxe.wait_script(
            "adopting needs an enrollment code (corral node enroll-code)",
            f"{ctx.server_url}/boot/{mac}.ipxe",
        )
        return ipxe_response(text)
    given = None if admin else code
    text = await ctx.run(adopt_unassigned, ctx, mac, request.match_info["name"], given)
    return ipxe_response(text)


def register(ctx: HttpContext, mac: str) -> str:
    with ctx.corral.store.transaction() as conn:
        record_discovered(conn, mac, {"source": "ipxe", "registered": True}, time.time())
    reason = f"registered {mac}: waiting for 'corral node adopt {mac} NAME'"
    return ipxe.wait_script(reason, f"{ctx.server_url}/boot/{mac}.ipxe", seconds=15)


@routes.get("/boot/{mac}/register.ipxe")
async def register_route(request: web.Request) -> web.Response:
    ctx = context_of(request)
    return ipxe_response(await ctx.run(register, ctx, mac_of(request)))
