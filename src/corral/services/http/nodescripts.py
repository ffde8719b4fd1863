"""A node's boot scripts and the end of its install, as its initramfs asks for them.

    GET  /api/v1/boot/self/scripts/{pre|part|post}          the script (empty: none)
    POST /api/v1/boot/self/scripts/{pre|part|post}?exit=N   its output (text, bounded)
    POST /api/v1/boot/self/installed?bootloader=bios,efi   the disk install is complete

Scripts come from the node's effective settings (profiles merged, then the
node's own). Their output becomes a `script` event; a failing script's last
lines also reach `corral status` through the `failed` report the initramfs
sends next. After `installed`, the node's network boots are answered "boot
from the local disk" (see `corral.store.bootplan`). The caller is identified
by its node credential (`nodeauth.node_caller`), and only ever acts as itself.
"""

from __future__ import annotations

import time

from aiohttp import web

from corral.inventory.errors import InventoryError
from corral.services.http.context import HttpContext, context_of
from corral.services.http.events import publish
from corral.services.http.limits import body_limit
from corral.services.http.nodeauth import node_caller
from corral.store.bootplan import record_script, set_installed
from corral.store.inventory import load_node_view

routes = web.RouteTableDef()
SCRIPTS = ("pre", "part", "post")
OUTPUT_LIMIT = 16384  # bytes a node may post; the event keeps the end of it
BOOTLOADERS = ("bios", "efi", "bios,efi")


def script_kind(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in SCRIPTS:
        raise web.HTTPNotFound(text=f"no script {kind!r}: one of {', '.join(SCRIPTS)}\n")
    return kind


def script_text(ctx: HttpContext, node: str, kind: str) -> str:
    with ctx.corral.store.transaction() as conn:
        view = load_node_view(conn, node)
        assert view is not None
        return getattr(view.effective(node).settings.scripts, kind) or ""


@routes.get("/api/v1/boot/self/scripts/{kind}")
async def get_script(request: web.Request) -> web.Response:
    ctx = context_of(request)
    caller = await node_caller(request)
    text = await ctx.run(script_text, ctx, caller.node, script_kind(request))
    return web.Response(text=text, headers={"Cache-Control": "no-store"})


def exit_status(request: web.Request) -> int:
    value = request.query.get("exit", "")
    if not value.isdigit() or int(value) > 255:
        raise InventoryError(f"'exit' must be an exit status 0-255, not {value!r}")
    return int(value)


def save_output(
    ctx: HttpContext, node: str, kind: str, status: int, output: str
) -> dict[str, object]:
    with ctx.corral.store.transaction() as conn:
        return record_script(conn, node, time.time(), kind, status, output)


@routes.post("/api/v1/boot/self/scripts/{kind}")
@body_limit(OUTPUT_LIMIT)  # the middleware refuses more before it is read
async def post_output(request: web.Request) -> web.Response:
    ctx = context_of(request)
    caller = await node_caller(request)
    kind = script_kind(request)
    status = exit_status(request)
    output = (await request.read()).decode(errors="replace")
    event = await ctx.run(save_output, ctx, caller.node, kind, status, output)
    publish(ctx, event)
    return web.json_response({"recorded": True})


def mark_installed(ctx: HttpContext, node: str, bootloader: str) -> None:
    info = {"time": time.time(), "bootloader": bootloader}
    with ctx.corral.store.transaction() as conn:
        set_installed(conn, node, info)


@routes.post("/api/v1/boot/self/installed")
async def post_installed(request: web.Request) -> web.Response:
    ctx = context_of(request)
    caller = await node_caller(request)
    bootloader = request.query.get("bootloader", "")
    if bootloader not in BOOTLOADERS:
        raise InventoryError(f"'bootloader' must be one of {', '.join(BOOTLOADERS)}")
    await ctx.run(mark_installed, ctx, caller.node, bootloader)
    return web.json_response({"installed": True})
