"""`/api/v1/switches`: switches and their port maps, as `corral switch` edits them.

The SNMP community is a secret: answers show it as `***`.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field

from corral.discovery.switches import Switch
from corral.services.http.context import context_of
from corral.services.http.routing import accepts, parsed

routes = web.RouteTableDef()


class PortMap(BaseModel):
    """Ports of a switch mapped one to one onto nodes."""

    ports: Annotated[str, Field(max_length=4096)] = Field(
        description="Ports: 1-48, Gi1/0/[1-48] or swp1,swp3"
    )
    nodes: Annotated[str, Field(max_length=4096)] = Field(description="Nodes: n[001-048]")


def switch_json(switch: Switch) -> dict[str, Any]:
    return switch.model_dump(mode="json", exclude_defaults=True)


@routes.get("/api/v1/switches")
async def list_switches(request: web.Request) -> web.Response:
    ctx = context_of(request)
    return web.json_response([switch_json(s) for s in await ctx.run(ctx.actions.switches)])


@routes.post("/api/v1/switches")
@accepts(Switch)
async def add_switch(request: web.Request) -> web.Response:
    ctx = context_of(request)
    switch = await parsed(request, Switch)
    return web.json_response(switch_json(await ctx.run(ctx.actions.add_switch, switch)), status=201)


@routes.post("/api/v1/switches/{name}/ports")
@accepts(PortMap)
async def map_ports(request: web.Request) -> web.Response:
    ctx = context_of(request)
    req = await parsed(request, PortMap)
    name = request.match_info["name"]
    return web.json_response(
        switch_json(await ctx.run(ctx.actions.map_switch, name, req.ports, req.nodes))
    )


@routes.delete("/api/v1/switches/{name}")
async def delete_switch(request: web.Request) -> web.Response:
    ctx = context_of(request)
    name = request.match_info["name"]
    await ctx.run(ctx.actions.delete_switch, name)
    return web.json_response({"deleted": name})
