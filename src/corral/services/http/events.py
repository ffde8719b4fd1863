"""Node states for admins: `/api/v1/status` and the `/api/v1/events` stream.

`/api/v1/events` is server-sent events (text/event-stream): one `state`
event per state change, `id:` being the row id in the `events` table, so a
client that reconnects with `Last-Event-ID` (or `?since=ID`) gets exactly the
events it missed. Without either it starts with the next change.

Streams are woken by the `EventHub` as soon as this server records a change
(`publish`, called by the handler that recorded it), and read the table every
`POLL_SECONDS` as well, for changes written by other processes (the CLI, a
second server on the same PostgreSQL). Either way the table is the source of
what is sent, so nothing is sent twice or out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from aiohttp import web

from corral.inventory.hostlists import expand
from corral.inventory.types import Data
from corral.services.http.bodies import MAX_INT, bounded_int, int_query
from corral.services.http.context import CONTEXT, HttpContext, context_of
from corral.store.status import events_since, last_event_id

routes = web.RouteTableDef()
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
BATCH = 500
MAX_KINDS_TEXT = 1000


class EventHub:
    """Wakes every open stream when this server records a change."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Event] = set()
        self.closing = asyncio.Event()

    def subscribe(self) -> asyncio.Event:
        wake = asyncio.Event()
        self._waiters.add(wake)
        return wake

    def unsubscribe(self, wake: asyncio.Event) -> None:
        self._waiters.discard(wake)

    def publish(self) -> None:
        for wake in self._waiters:
            wake.set()

    def close(self) -> None:
        """Server shutdown: end every stream now rather than at the shutdown timeout."""
        self.closing.set()
        self.publish()


def hub_of(ctx: HttpContext) -> EventHub:
    hub = ctx.extra.get("event_hub")
    if not isinstance(hub, EventHub):
        hub = ctx.extra["event_hub"] = EventHub()
    return hub


def publish(ctx: HttpContext, event: Data | None) -> None:
    """Tell open streams that `event` was recorded (None: nothing changed)."""
    if event is not None:
        hub_of(ctx).publish()


async def close_streams(app: web.Application) -> None:
    """`app.on_shutdown` hook: end open event streams so shutdown does not wait on them."""
    hub_of(app[CONTEXT]).close()


def names_query(request: web.Request) -> list[str] | None:
    pattern = request.query.get("names")
    return expand(pattern) if pattern else None


@routes.get("/api/v1/status")
async def get_status(request: web.Request) -> web.Response:
    ctx = context_of(request)
    return web.json_response(await ctx.run(ctx.actions.status, names_query(request)))


def read_events(ctx: HttpContext, after: int, limit: int = BATCH) -> list[Data]:
    with ctx.corral.store.reading() as conn:
        return events_since(conn, after, limit)


def read_last_id(ctx: HttpContext) -> int:
    with ctx.corral.store.reading() as conn:
        return last_event_id(conn)


async def found_events(request: web.Request, ctx: HttpContext, after: int) -> list[Data]:
    """`?format=json`: a page of events, filtered by `names`, `kind`, `start`, `newest`."""
    limit = int_query(request, "limit", BATCH, 1, 10 * BATCH)
    kinds = request.query.get("kind")
    start = request.query.get("start")
    try:
        since = None if start is None else float(start)
    except ValueError:
        raise web.HTTPBadRequest(text=f"start must be a time in seconds, not {start!r}") from None
    if kinds is not None and len(kinds) > MAX_KINDS_TEXT:
        raise web.HTTPBadRequest(text=f"kind: at most {MAX_KINDS_TEXT} characters")
    return await ctx.run(
        ctx.actions.find_events,
        after,
        limit,
        names_query(request),
        kinds.split(",") if kinds else None,
        since,
        request.query.get("newest") == "1",
    )


def cursor_of(request: web.Request) -> int | None:
    """Where to resume: `Last-Event-ID`, else `?since=`, else None (from now on)."""
    text = request.headers.get("Last-Event-ID") or request.query.get("since")
    if text is None or text == "":
        return None
    return bounded_int(text, "event id", 0, MAX_INT)


def sse(event: Data) -> bytes:
    body = json.dumps(event, separators=(",", ":"))
    return f"id: {event['id']}\nevent: {event['kind']}\ndata: {body}\n\n".encode()


@routes.get("/api/v1/events")
async def get_events(request: web.Request) -> web.StreamResponse:
    ctx = context_of(request)
    cursor = cursor_of(request)
    if request.query.get("format") == "json":
        return web.json_response(await found_events(request, ctx, cursor or 0))
    if cursor is None:
        cursor = await ctx.run(read_last_id, ctx)
    return await stream(request, ctx, cursor)


async def stream(request: web.Request, ctx: HttpContext, cursor: int) -> web.StreamResponse:
    hub = hub_of(ctx)
    wake = hub.subscribe()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        await pump(response, ctx, hub, wake, cursor)
    except ConnectionResetError:  # the client went away
        pass
    finally:
        hub.unsubscribe(wake)
    return response


async def pump(
    response: web.StreamResponse, ctx: HttpContext, hub: EventHub, wake: asyncio.Event, cursor: int
) -> None:
    """Send events after `cursor` until the client leaves or the server stops."""
    quiet_since = time.monotonic()
    while not hub.closing.is_set():
        wake.clear()
        events = await ctx.run(read_events, ctx, cursor)
        for event in events:
            await response.write(sse(event))
            cursor = event["id"]
        if events:
            quiet_since = time.monotonic()
            if len(events) == BATCH:
                continue
        elif time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
            await response.write(b": keepalive\n\n")
            quiet_since = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), POLL_SECONDS)
