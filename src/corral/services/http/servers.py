"""`GET /api/v1/servers`: the servers of this cluster as this server sees them.

Every `corral serve` on the database, live by its heartbeat (`corral.store.servers`);
what nodes are told to fall back to. For admins and for tests that wait for a
second server to be known before they boot nodes.
"""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from corral.services.http.context import context_of

routes = web.RouteTableDef()


@routes.get("/api/v1/servers")
async def servers(request: web.Request) -> web.Response:
    ctx = context_of(request)
    rows = [{**asdict(s), "this": s.url == ctx.server_url} for s in ctx.servers]
    return web.json_response(rows, headers={"Cache-Control": "no-store"})
