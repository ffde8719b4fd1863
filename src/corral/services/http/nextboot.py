"""REST: what nodes do at their next network boot (admin token needed).

POST /api/v1/nodes/reinstall  {"names": HOSTLIST}               forget the disk install
POST /api/v1/nodes/service    {"names": HOSTLIST, "on": bool}   rescue environment on/off
"""

from __future__ import annotations

from aiohttp import web

from corral.services.http.bodies import NodesDelete, NodesService
from corral.services.http.context import context_of
from corral.services.http.names import names_list
from corral.services.http.routing import accepts, parsed

routes = web.RouteTableDef()


@routes.post("/api/v1/nodes/reinstall")
@accepts(NodesDelete, description="The stateful nodes to reinstall at their next network boot")
async def reinstall(request: web.Request) -> web.Response:
    ctx = context_of(request)
    names = names_list((await parsed(request, NodesDelete)).names)
    return web.json_response({"nodes": await ctx.run(ctx.actions.reinstall, names)})


@routes.post("/api/v1/nodes/service")
@accepts(NodesService)
async def service(request: web.Request) -> web.Response:
    ctx = context_of(request)
    data = await parsed(request, NodesService)
    names = names_list(data.names)
    return web.json_response({"nodes": await ctx.run(ctx.actions.service_mode, names, data.on)})
