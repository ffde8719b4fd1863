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
    count_sent(ctx.extra.setdefault("artifact_bytes", {}), name, request, path.stat().st_size)
    return web.FileResponse(path, chunk_size=1 << 20)


def count_sent(sent: dict[str, int], name: str, request: web.Request, size: int) -> None:
    """Bytes this request asks for (whole file or its Range): the server's egress ledger.

    Counted from the request rather than after sending, so the response stays
    a plain FileResponse (sendfile, keep-alive) and is never prepared twice.
    """
    if request.if_none_match:
        return  # most likely a 304
    try:
        wanted = request.http_range
    except ValueError:
        return
    start = wanted.start or 0
    stop = size if wanted.stop is None else min(wanted.stop, size)
    if start < 0:  # a suffix range: the last -start bytes
        start, stop = max(size + start, 0), size
    sent[name] = sent.get(name, 0) + max(stop - start, 0)
