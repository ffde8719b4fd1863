"""Errors as JSON: user errors map to 400/404/409, never a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

from corral.inventory.errors import Conflict, InventoryError, NotFound
from corral.inventory.ops import describe

log = logging.getLogger("corral.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def status_of(exc: InventoryError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 400


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Malformed bodies arrive as `InventoryError` from `bodies.read_json`, their one reader."""
    try:
        return await handler(request)
    except InventoryError as exc:
        return json_error(status_of(exc), str(exc))
    except ValidationError as exc:
        return json_error(400, str(describe(exc, "request body")))
