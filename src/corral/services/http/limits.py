"""Request bodies are bounded per route, before they are read.

Why: the node endpoints are public, so whatever they read, anyone on the
provisioning network can make the server read. A 200 MB body used to be read
and parsed before the caller was even identified. Here every body is checked
twice: against its Content-Length before a byte is read (413 at once, and the
connection is closed so the rest is never read), and again while it streams
in (chunked bodies, compressed bodies). Public bodies are small and read here,
under a deadline, so a client that trickles its body cannot hold a handler.

A handler that needs more or less than the default declares it:

    @routes.post("/api/v1/apply")
    @body_limit(256 * MiB)
    async def apply(request): ...

Defaults: PUBLIC_BODY for routes anyone may call, ADMIN_BODY for admin routes
(whose token is checked before this runs, so a stranger's body is never read).
Handlers read bodies with `request.read()`, `.json()`, `.text()` or `.post()`:
a public body has been read here already, so `request.content` is empty
(multipart forms are left to `post()`, which enforces the same limit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from corral.services.http.auth import is_admin_path
from corral.services.http.errors import Handler, json_error
from corral.services.http.routing import body_of

MiB = 1 << 20
PUBLIC_BODY = 64 * 1024  # a node's state report is a few hundred bytes
ADMIN_BODY = 1 * MiB  # a PATCH of 10,000 nodes by name fits
BODY_TIMEOUT = 30.0  # seconds for a public body to arrive in full
_ATTRIBUTE = "corral_body_limit"

H = TypeVar("H", bound=Callable[..., object])


def body_limit(size: int) -> Callable[[H], H]:
    """Declare the largest request body (bytes) that this handler accepts."""
    if size < 0:
        raise ValueError("a body limit is a number of bytes")

    def mark(handler: H) -> H:
        setattr(handler, _ATTRIBUTE, size)
        return handler

    return mark


def declared_limit(handler: object) -> int | None:
    """The limit a handler declared with `body_limit` (a raw, non-JSON body), if any."""
    found = getattr(handler, _ATTRIBUTE, None)
    return found if isinstance(found, int) else None


def limit_of(request: web.Request) -> int:
    """The route's declared limit (`body_limit`, or `accepts(..., limit=)`), else the
    default for public or admin routes."""
    handler = request.match_info.handler
    declared = getattr(handler, _ATTRIBUTE, None)
    if isinstance(declared, int):
        return declared
    body = body_of(handler)
    if body is not None and body.limit is not None:
        return body.limit
    return ADMIN_BODY if is_admin_path(request.path) else PUBLIC_BODY


def too_large(limit: int) -> web.Response:
    response = json_error(413, f"request body too large: this route accepts at most {limit} bytes")
    response.force_close()  # never read the rest of it
    return response


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.body_exists:
        return await handler(request)
    limit = limit_of(request)
    if request.content_length is not None and request.content_length > limit:
        return too_large(limit)
    bounded = request.clone(client_max_size=limit)
    if not is_admin_path(request.path) and request.content_type != "multipart/form-data":
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                await bounded.read()  # cached: the handler's read() costs nothing
        except web.HTTPRequestEntityTooLarge:
            return too_large(limit)
        except TimeoutError:
            response = json_error(408, f"request body did not arrive within {BODY_TIMEOUT:g} s")
            response.force_close()
            return response
    try:
        return await handler(bounded)
    except web.HTTPRequestEntityTooLarge:
        return too_large(limit)
