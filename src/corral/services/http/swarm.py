"""`GET /api/v1/swarm`: how images are being shared, for `corral status` and tests.

Per torrent: what the tracker saw (peers, seeds, completed, uploads the nodes
reported) and what the server itself sent: the seeder's BitTorrent upload and
the artifact bytes sent over plain HTTP (the fallback path).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from corral.services.http.context import context_of

routes = web.RouteTableDef()


@routes.get("/api/v1/swarm")
async def swarm(request: web.Request) -> web.Response:
    extra = context_of(request).extra
    tracker = extra.get("tracker")
    seeder = extra.get("seeder")
    data: dict[str, Any] = {
        "tracker": tracker.stats() if tracker is not None else {},
        "seeder": {h: asdict(s) for h, s in seeder.stats().items()} if seeder else {},
        "http_artifact_bytes": extra.get("artifact_bytes", {}),  # by artifact sha256
    }
    return web.json_response(data)
