"""`GET /api/v1/images`: the image catalog, for `corral --server URL image list`.

Only listing goes over the API: building, packing and shelling into images
work on the server's own files, so those commands run on the server.
"""

from __future__ import annotations

from aiohttp import web

from corral.services.http.context import context_of

routes = web.RouteTableDef()


@routes.get("/api/v1/images")
async def list_images(request: web.Request) -> web.Response:
    ctx = context_of(request)
    images = await ctx.run(ctx.actions.images)
    return web.json_response([i.model_dump(mode="json") for i in images])
