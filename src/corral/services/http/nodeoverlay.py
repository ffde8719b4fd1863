"""Overlays: this node's rendered files (host keys, cluster secrets) for its credential only.

GET /api/v1/boot/self/overlay     -> .tar.gz, ETag; `/api/v1/boot/{name}/overlay` for itself
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from corral.overlays import overlay_archive, render_node
from corral.services.http.context import HttpContext, context_of
from corral.services.http.nodeauth import node_caller

routes = web.RouteTableDef()


def overlay_of(ctx: HttpContext, node: str) -> bytes:
    return overlay_archive(render_node(ctx.corral, ctx.corral.settings.paths, node))


@routes.get("/api/v1/boot/self/overlay")
@routes.get("/api/v1/boot/{name}/overlay")
async def get_overlay(request: web.Request) -> web.Response:
    caller = await node_caller(request)
    ctx = context_of(request)
    data = await ctx.run(overlay_of, ctx, caller.node)
    etag = '"' + hashlib.sha256(data).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": "no-store"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, content_type="application/gzip", headers=headers)
