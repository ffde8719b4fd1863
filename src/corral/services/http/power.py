"""`POST /api/v1/power/{action}`: power actions run by the server, which holds the BMC passwords.

`corral --server URL power ...` calls this, so a remote CLI never needs (or
sees) a BMC password. Operators and admins may call it.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field

from corral.power.run import DEFAULT_CONCURRENCY
from corral.services.http.context import context_of
from corral.services.http.names import NAMES, Names, names_list
from corral.services.http.routing import accepts, parsed

routes = web.RouteTableDef()


class PowerRequest(BaseModel):
    """Which nodes, and how many at once."""

    names: Names = Field(description=NAMES)
    concurrency: Annotated[int, Field(ge=1, le=4096)] = Field(
        DEFAULT_CONCURRENCY, description="Nodes handled at once"
    )


@routes.post("/api/v1/power/{action}")
@accepts(PowerRequest)
async def power(request: web.Request) -> web.Response:
    """Run `action` (on, off, soft-off, cycle, reset, status, boot-network) on nodes."""
    ctx = context_of(request)
    req = await parsed(request, PowerRequest)
    action = request.match_info["action"]
    results = await ctx.run(ctx.actions.power, names_list(req.names), action, req.concurrency)
    return web.json_response([r.to_dict() for r in results])
