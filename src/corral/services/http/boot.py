"""Boot endpoints for firmware (no token: iPXE cannot carry one).

`/boot/{mac}.ipxe` gives a known machine its boot script; an unknown one is
recorded as discovered and gets a menu of unassigned node names (Luna's way)
or "register and wait". Adopting through the menu only ever claims a node
that has no MAC yet, so a machine cannot take over a node that has one.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.engine import Connection

from corral.boot import ipxe
from corral.boot.decide import ImageBoot, boot_files
from corral.inventory.errors import InventoryError
from corral.inventory.types import check_mac_or_error
from corral.services.http.context import HttpContext, context_of
from corral.services.http.nodeboot import artifact_entry
from corral.store import schema
from corral.store.inventory import load_node_view, node_name_by_mac
from corral.store.runtime import record_discovered
from corral.store.status import record_state

log = logging.getLogger("corral.http.boot")
routes = web.RouteTableDef()
MENU_LIMIT = 40


def ipxe_response(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/plain", headers={"Cache-Control": "no-store"})


def image_boot(conn: Connection, image: str, server_url: str) -> ImageBoot | None:
    spec = conn.execute(
        sa.select(schema.images.c.spec).where(schema.images.c.name == image)
    ).scalar()
    artifacts = (spec or {}).get("artifacts") or {}
    kernel = artifact_entry(artifacts.get("kernel"), server_url)
    initramfs = artifact_entry(artifacts.get("initramfs"), server_url)
    if kernel is None or initramfs is None:
        return None
    return ImageBoot(kernel["url"], initramfs["url"])


def unassigned_nodes(conn: Connection) -> list[str]:
    """Nodes with an interface but no MAC: candidates for an unknown machine."""
    rows = conn.execute(
        sa.select(schema.interfaces.c.node)
        .where(schema.interfaces.c.mac.is_(None))
        .order_by(schema.interfaces.c.node)
        .limit(MENU_LIMIT)
    )
    return [r[0] for r in rows]


def script_for(ctx: HttpContext, mac: str) -> str:
    with ctx.corral.store.transaction() as conn:
        name = node_name_by_mac(conn, mac)
        if name is None:
            record_discovered(conn, mac, {"source": "ipxe"}, time.time())
            return ipxe.discovery_menu(mac, ctx.server_url, unassigned_nodes(conn))
        record_state(conn, name, "pxe", time.time(), mac=mac)
        view = load_node_view(conn, name)
        assert view is not None
        eff = view.effective(name)
        image = eff.settings.image
        artifacts = image_boot(conn, image, ctx.server_url) if image else None
        files = boot_files(eff, mac, ctx.server_url, artifacts)
    if isinstance(files, str):
        return ipxe.wait_script(files, f"{ctx.server_url}/boot/{mac}.ipxe", seconds=30)
    return ipxe.node_script(name, files)


def mac_of(request: web.Request) -> str:
    try:
        return check_mac_or_error(request.match_info["mac"])
    except InventoryError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


@routes.get("/boot/{mac}.ipxe")
async def boot_script(request: web.Request) -> web.Response:
    ctx = context_of(request)
    mac = mac_of(request)
    text = await ctx.run(script_for, ctx, mac)
    log.info("boot script for %s from %s: %s", mac, request.remote, text.splitlines()[1])
    return ipxe_response(text)


@routes.get("/boot/{path:ipxe.efi|snponly.efi|arm64-efi/ipxe.efi}")
async def firmware_file(request: web.Request) -> web.StreamResponse:
    """iPXE for UEFI HTTP boot, from the TFTP root (fixed names only)."""
    ctx = context_of(request)
    path = ctx.tftp_root / request.match_info["path"]
    if not path.is_file():
        raise web.HTTPNotFound(text="not installed: run corral init\n")
    log.info("firmware %s to %s", request.match_info["path"], request.remote)
    return web.FileResponse(path)


def adopt_unassigned(ctx: HttpContext, mac: str, name: str) -> str:
    with ctx.corral.store.transaction() as conn:
        if name not in unassigned_nodes(conn):
            return ipxe.wait_script(
                f"node {name} is not free to adopt", f"{ctx.server_url}/boot/{mac}.ipxe"
            )
    ctx.actions.adopt(mac, name)
    return ipxe.wait_script(f"this machine is now {name}", f"{ctx.server_url}/boot/{mac}.ipxe", 1)


@routes.get("/boot/{mac}/adopt/{name}.ipxe")
async def adopt(request: web.Request) -> web.Response:
    ctx = context_of(request)
    text = await ctx.run(adopt_unassigned, ctx, mac_of(request), request.match_info["name"])
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
