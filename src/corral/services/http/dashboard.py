"""The dashboard: a few server-rendered pages under `/ui/`, live through server-sent events.

Why so plain: an admin opens it on the provisioning server's own port, often
through an SSH tunnel, and CI must be able to test it; so there is no front-end
build chain: Jinja2 renders the pages, and one small script (`ui/dashboard.js`)
applies the `/ui/events` stream (the same events as `/api/v1/events`) to the
node table in place.

Login: the admin token is typed once into `/ui/login`; the server answers with
a random session id in an HttpOnly, SameSite=Strict cookie scoped to `/ui/`
(the token itself never goes into a cookie or a page). Sessions live in this
server's memory for `SESSION_SECONDS`; a restart logs everyone out. The pages
only read: no page changes the inventory, so a stolen session reads, never acts.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from corral.inventory.errors import NotFound
from corral.services.http.context import HttpContext, context_of
from corral.services.http.events import read_last_id, stream
from corral.store.inventory import node_name_by_ip
from corral.store.status import last_event_id, list_status, node_events

routes = web.RouteTableDef()
UI = Path(__file__).parent / "ui"
COOKIE = "corral_session"
SESSION_SECONDS = 12 * 3600
MAX_LOGIN_BODY = 4096
CONSOLE_TAIL = 64 * 1024  # bytes of a console log shown on a node's page
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(UI), autoescape=True, undefined=jinja2.StrictUndefined
)


def sessions(ctx: HttpContext) -> dict[str, float]:
    found: dict[str, float] = ctx.extra.setdefault("ui_sessions", {})
    return found


def logged_in(request: web.Request) -> bool:
    ctx = context_of(request)
    sid = request.cookies.get(COOKIE, "")
    expires = sessions(ctx).get(sid)
    return expires is not None and expires > time.time()


def page(template: str, **values: Any) -> web.Response:
    text = _env.get_template(template).render(**values)
    return web.Response(text=text, content_type="text/html")


def need_login(request: web.Request) -> None:
    if not logged_in(request):
        raise web.HTTPSeeOther("/ui/login")


@routes.get("/ui/login")
async def login_form(request: web.Request) -> web.Response:
    return page("login.html", error=None)


@routes.post("/ui/login")
async def login(request: web.Request) -> web.Response:
    if (request.content_length or 0) > MAX_LOGIN_BODY:
        raise web.HTTPRequestEntityTooLarge(MAX_LOGIN_BODY, request.content_length or 0)
    form = await request.post()
    ctx = context_of(request)
    given = str(form.get("token", "")).strip()
    if not hmac.compare_digest(given, ctx.token):
        response = page("login.html", error="That token is not this server's admin token.")
        response.set_status(401)
        return response
    now = time.time()
    table = sessions(ctx)
    for sid in [s for s, t in table.items() if t <= now]:
        del table[sid]
    sid = secrets.token_urlsafe(32)
    table[sid] = now + SESSION_SECONDS
    response = web.HTTPSeeOther("/ui/")
    response.set_cookie(
        COOKIE, sid, max_age=SESSION_SECONDS, path="/ui/", httponly=True, samesite="Strict"
    )
    raise response


@routes.post("/ui/logout")
async def logout(request: web.Request) -> web.Response:
    sessions(context_of(request)).pop(request.cookies.get(COOKIE, ""), None)
    response = web.HTTPSeeOther("/ui/login")
    response.del_cookie(COOKIE, path="/ui/")
    raise response


@routes.get("/ui/")
async def nodes_page(request: web.Request) -> web.Response:
    need_login(request)
    ctx = context_of(request)
    rows, cursor = await ctx.run(_nodes, ctx)
    return page("nodes.html", rows=rows, cursor=cursor, now=time.time())


def _nodes(ctx: HttpContext) -> tuple[list[dict[str, Any]], int]:
    inv = ctx.corral.read()
    with ctx.corral.store.reading() as conn:
        status = {s["node"]: s for s in list_status(conn)}
        cursor = last_event_id(conn)
    rows = []
    for name in sorted(inv.nodes):
        node = inv.nodes[name]
        settings = inv.effective(name).settings
        primary = inv.primary_network(node)
        iface = node.interface_on(primary.name) if primary else None
        s = status.get(name, {})
        rows.append(
            {
                "name": name,
                "state": s.get("state", "new"),
                "since": s.get("since", 0.0),
                "image": settings.image or "",
                "address": str(iface.ip) if iface and iface.ip else "",
                "progress": _progress(s),
                "peers": s.get("peers", ""),
                "error": s.get("error", ""),
            }
        )
    return rows, cursor


def _progress(status: dict[str, Any]) -> str:
    done, total = status.get("bytes"), status.get("total")
    if isinstance(done, int) and isinstance(total, int) and total > 0:
        return f"{min(100 * done // total, 100)}%"
    return ""


@routes.get("/ui/nodes/{name}")
async def node_page(request: web.Request) -> web.Response:
    need_login(request)
    ctx = context_of(request)
    name = request.match_info["name"]
    try:
        values = await ctx.run(_node, ctx, name)
    except NotFound as exc:
        raise web.HTTPNotFound(text=f"{exc}\n") from None
    return page("node.html", **values)


def _node(ctx: HttpContext, name: str) -> dict[str, Any]:
    inv = ctx.corral.read()
    if name not in inv.nodes:
        raise NotFound(f"no such node: {name}")
    effective = inv.effective(name)
    dumped = effective.settings.model_dump(mode="json", exclude={"power": {"password"}})
    settings = [
        (key, value, ", ".join(effective.origins.get(key, [])) or "default")
        for key, value in _flatten(dumped)
    ]
    with ctx.corral.store.reading() as conn:
        events = node_events(conn, name)
        status = next(iter(list_status(conn, [name])), {})
    log = effective.settings.power.options.get("console_log")
    return {
        "name": name,
        "status": status,
        "settings": settings,
        "events": events,
        "console": _tail(Path(log)) if log else None,
    }


def _flatten(data: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in data.items():
        if isinstance(value, dict) and value:
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _tail(path: Path) -> str:
    """The end of a console log (never following a link out of it)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(size - CONSOLE_TAIL, 0))
            return fh.read().decode(errors="replace")
    except OSError as exc:
        return f"(no console log: {exc.strerror})"


@routes.get("/ui/swarm")
async def swarm_page(request: web.Request) -> web.Response:
    need_login(request)
    ctx = context_of(request)
    tracker = ctx.extra.get("tracker")
    swarms = await ctx.run(_swarms, ctx, tracker)
    return page("swarm.html", swarms=swarms)


def _swarms(ctx: HttpContext, tracker: Any) -> list[dict[str, Any]]:
    if tracker is None:
        return []
    out = []
    with ctx.corral.store.reading() as conn:
        for info_hash, swarm in list(tracker.swarms.items()):
            peers = []
            for peer in list(swarm.peers.values()):
                name = "corral (seeder)" if peer.server else node_name_by_ip(conn, peer.ip)
                peers.append(
                    {
                        "name": name or peer.ip,
                        "progress": f"{100 * swarm.progress(peer):.0f}%",
                        "uploaded": peer.uploaded,
                        "seed": peer.is_seed,
                    }
                )
            stats = swarm.stats()
            out.append({"info_hash": info_hash.hex(), "stats": stats, "peers": peers})
    return out


@routes.get("/ui/events")
async def ui_events(request: web.Request) -> web.StreamResponse:
    """The events stream for the page, with the session cookie instead of the token."""
    if not logged_in(request):
        raise web.HTTPUnauthorized(text="log in at /ui/login\n")
    ctx = context_of(request)
    text = request.headers.get("Last-Event-ID") or request.query.get("since", "")
    cursor = int(text) if text.isdigit() else await ctx.run(read_last_id, ctx)
    return await stream(request, ctx, cursor)


@routes.get("/ui/dashboard.js")
async def script(request: web.Request) -> web.FileResponse:
    return web.FileResponse(UI / "dashboard.js", headers={"Content-Type": "text/javascript"})
