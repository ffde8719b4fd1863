"""Artifacts (kernels, initramfs, packed images, torrents) by content address.

Only names of the form `<sha256>[.ext]` are served, straight from the artifact
directory: nothing outside it can be named. aiohttp's FileResponse gives
Range, ETag/If-None-Match and sendfile (zero-copy) for free.
"""

from __future__ import annotations

import re

from aiohttp import web

from corral.services.http.context import context_of

routes = web.RouteTableDef()
ARTIFACT_NAME = re.compile(r"^[0-9a-f]{64}(\.[a-z0-9]{1,16})*$")


@routes.get("/artifacts/{name}")
async def artifact(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if not ARTIFACT_NAME.match(name):
        raise web.HTTPNotFound(text="no such artifact\n")
    ctx = context_of(request)
    path = ctx.corral.settings.paths.artifacts / name
    if not path.is_file():
        raise web.HTTPNotFound(text="no such artifact\n")
    response = web.FileResponse(path, chunk_size=1 << 20)
    await response.prepare(request)  # sends the file (sendfile); then its length is known
    sent = ctx.extra.setdefault("artifact_bytes", {})
    sent[name] = sent.get(name, 0) + (response.content_length or 0)
    return response
