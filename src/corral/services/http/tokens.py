"""`/api/v1/tokens`: named API tokens with roles (admin only).

The secret is in the answer to the POST that creates it and nowhere after:
lists show names, roles and times.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from corral.inventory.types import Name
from corral.services.http.context import context_of
from corral.services.http.routing import accepts, parsed
from corral.store.tokens import Role

routes = web.RouteTableDef()


class TokenRequest(BaseModel):
    """A new token: its name and what it may do."""

    name: Name = Field(description="Token name, recorded with every action it takes")
    role: Role = Field(description="admin, operator (power too) or read-only")


@routes.get("/api/v1/tokens")
async def list_tokens(request: web.Request) -> web.Response:
    ctx = context_of(request)
    return web.json_response(await ctx.run(ctx.actions.tokens))


@routes.post("/api/v1/tokens")
@accepts(TokenRequest)
async def create_token(request: web.Request) -> web.Response:
    ctx = context_of(request)
    req = await parsed(request, TokenRequest)
    secret = await ctx.run(ctx.actions.create_token, req.name, req.role.value)
    return web.json_response(
        {"name": req.name, "role": req.role.value, "token": secret}, status=201
    )


@routes.delete("/api/v1/tokens/{name}")
async def revoke_token(request: web.Request) -> web.Response:
    ctx = context_of(request)
    name = request.match_info["name"]
    await ctx.run(ctx.actions.revoke_token, name)
    return web.json_response({"revoked": name})
