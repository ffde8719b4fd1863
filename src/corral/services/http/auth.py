"""Admin calls need the bearer token; boot endpoints identify nodes otherwise."""

from __future__ import annotations

import hmac

from aiohttp import web

from corral.services.http.context import context_of
from corral.services.http.errors import Handler, json_error

PUBLIC_PREFIXES = ("/api/v1/boot/", "/api/v1/openapi.json")


def is_admin_path(path: str) -> bool:
    return path.startswith("/api/v1/") and not path.startswith(PUBLIC_PREFIXES)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_admin_path(request.path):
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        token = context_of(request).token
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
            return json_error(401, "admin token missing or wrong (Authorization: Bearer TOKEN)")
    return await handler(request)
