"""Enrollment codes (admin): one unknown machine may adopt one free node with a code.

    POST /api/v1/enroll-codes  {"minutes": 60}  -> {"code": "ABCD-EFGH-JKLM", "expires": T}

The code is shown once (the server keeps its hash) and typed at the machine's
console in the iPXE menu (see `boot.py`); it is good for one adoption.
"""

from __future__ import annotations

from aiohttp import web

from corral.services.http.bodies import EnrollCodeRequest
from corral.services.http.context import context_of
from corral.services.http.routing import accepts, parsed

routes = web.RouteTableDef()


@routes.post("/api/v1/enroll-codes")
@accepts(EnrollCodeRequest, limit=1024)
async def create_code(request: web.Request) -> web.Response:
    ctx = context_of(request)
    asked = await parsed(request, EnrollCodeRequest)
    made = await ctx.run(ctx.actions.enroll_code, asked.minutes)
    return web.json_response(made, status=201, headers={"Cache-Control": "no-store"})
