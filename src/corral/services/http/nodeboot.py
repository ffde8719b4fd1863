"""What a booting node asks the server: who am I, here is my state, my overlay.

These paths are public (an initramfs has no token), so the server decides
who the caller is, never the caller: by its source address, which must be a
node's reserved address or the address of a live DHCP lease whose MAC is a
node's. A `mac` query parameter, if given, must be that node's as well. A
node acts only as itself: `/api/v1/boot/{name}/...` with any name but its
own (or `self`) is refused with 403.

    GET  /api/v1/boot/self[?mac=M][&format=sh]   identity, image, artifact URLs
    POST /api/v1/boot/self/state                 {"state", "error"?, "bytes"?, ...}
    GET  /api/v1/boot/self/overlay               this node's rendered overlay (.tar.gz)

`format=sh` answers the identity as `CORRAL_X='value'` lines for busybox sh.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.engine import Connection

from corral.inventory.errors import InventoryError
from corral.inventory.types import check_mac_or_error
from corral.overlays import overlay_archive, render_node
from corral.services.http.context import HttpContext, context_of
from corral.services.http.events import publish
from corral.store import schema
from corral.store.inventory import load_node_view, node_name_by_mac
from corral.store.status import get_status, record_state

routes = web.RouteTableDef()
Data = dict[str, Any]
ARTIFACT_KINDS = ("image", "torrent", "kernel", "initramfs")
ARTIFACT_FIELDS = ("sha256", "size", "format", "info_hash", "piece_size", "tracker", "web_seed")
REPORT_INTS = ("bytes", "total", "peers")
REPORT_TEXTS = {"error": 2000, "message": 200}


class NotThisNode(web.HTTPForbidden):
    """The caller is not the node it asks about, or not a node at all (HTTP 403)."""

    def __init__(self, message: str) -> None:
        body = json.dumps({"error": message})
        super().__init__(text=body, content_type="application/json")
        self.message = message


@dataclass(frozen=True)
class Caller:
    node: str
    ip: str
    mac: str | None


# --- who is calling -------------------------------------------------------------------------


def nodes_at(conn: Connection, ip: str) -> list[tuple[str, str | None]]:
    """(node, mac) of every interface reserved at `ip` (one per network at most)."""
    t = schema.interfaces
    return [(r.node, r.mac) for r in conn.execute(sa.select(t.c.node, t.c.mac).where(t.c.ip == ip))]


def lease_mac(conn: Connection, ip: str, now: float) -> str | None:
    """The MAC holding a live DHCP lease on `ip`, if any."""
    t = schema.leases
    query = sa.select(t.c.mac).where(t.c.ip == ip, t.c.expires > now)
    return conn.execute(query).scalar()


def identify(conn: Connection, ip: str, mac: str | None, now: float) -> Caller:
    """The node at source address `ip` (cross-checked with `mac` when given).

    :raises NotThisNode: no node, or more than one, has that address.
    """
    found = nodes_at(conn, ip)
    if not found:
        leased = lease_mac(conn, ip, now)
        name = node_name_by_mac(conn, leased) if leased else None
        found = [(name, leased)] if name else []
    if mac is not None:
        found = [(n, m) for n, m in found if m == mac]
    if len(found) != 1:
        why = "no node" if not found else "more than one node"
        raise NotThisNode(f"{why} has address {ip}" + (f" and MAC {mac}" if mac else ""))
    name, known_mac = found[0]
    return Caller(name, ip, known_mac)


def mac_param(request: web.Request) -> str | None:
    value = request.query.get("mac")
    return check_mac_or_error(value) if value else None


def identify_request(ctx: HttpContext, request: web.Request) -> Caller:
    ip = request.remote
    if not ip:
        raise NotThisNode("the caller's address is unknown")
    mac = mac_param(request)
    with ctx.corral.store.transaction() as conn:
        caller = identify(conn, ip, mac, time.time())
    asked = request.match_info.get("name", "self")
    if asked not in ("self", caller.node):
        raise NotThisNode(f"you are {caller.node}: a node may only act as itself, not {asked}")
    return caller


# --- who am I -------------------------------------------------------------------------------


def artifact_entry(value: Any, server_url: str) -> Data | None:
    """One artifact as the node needs it: its URL plus what the image record says."""
    if isinstance(value, str):
        value = {"sha256": value}
    if not isinstance(value, dict) or not isinstance(value.get("sha256"), str):
        return None
    entry = {k: value[k] for k in ARTIFACT_FIELDS if k in value}
    entry["url"] = f"{server_url}/artifacts/{value['sha256']}"
    return entry


def image_info(conn: Connection, name: str | None, server_url: str) -> Data | None:
    if name is None:
        return None
    t = schema.images
    row = conn.execute(sa.select(t.c.digest, t.c.spec).where(t.c.name == name)).first()
    spec: Data = (row.spec if row else None) or {}
    recorded: Data = spec.get("artifacts") or {}
    artifacts = {k: artifact_entry(recorded.get(k), server_url) for k in ARTIFACT_KINDS}
    found = {k: v for k, v in artifacts.items() if v is not None}
    digest = recorded.get("digest") or (row.digest if row else None) or spec.get("digest")
    ready = "image" in found or "torrent" in found
    return {"name": name, "digest": digest, "ready": ready, "artifacts": found}


def self_info(conn: Connection, caller: Caller, server_url: str) -> Data:
    view = load_node_view(conn, caller.node)
    assert view is not None  # identify() found it in the same database
    eff = view.effective(caller.node)
    settings = eff.settings
    network = view.primary_network(eff.node)
    boot = settings.boot or "stateless"
    disk = settings.disk if boot == "stateful" else None
    status = get_status(conn, caller.node)
    base = f"{server_url}/api/v1/boot/self"
    return {
        "node": caller.node,
        "hostname": caller.node,
        "domain": network.domain if network else None,
        "ip": caller.ip,
        "mac": caller.mac,
        "boot": boot,
        "kernel_args": list(settings.kernel_args),
        "disk": None if disk is None else disk.model_dump(mode="json"),
        "image": image_info(conn, settings.image, server_url),
        "overlay_url": f"{base}/overlay",
        "state_url": f"{base}/state",
        "state": status["state"] if status else "new",
        "server_url": server_url,
    }


def shell_lines(info: Data) -> str:
    """The identity as `CORRAL_X='value'` lines that busybox sh can `eval`."""
    image = info["image"] or {}
    arts = image.get("artifacts") or {}
    disk = info["disk"] or {}
    parts = [
        f"{p['label']}:{p.get('size_mib') or ''}:{p['format']}:{p.get('mount') or ''}"
        for p in disk.get("partitions", [])
    ]
    values = {
        "NODE": info["node"],
        "HOSTNAME": info["hostname"],
        "DOMAIN": info["domain"],
        "IP": info["ip"],
        "MAC": info["mac"],
        "BOOT": info["boot"],
        "STATE": info["state"],
        "KERNEL_ARGS": " ".join(info["kernel_args"]),
        "IMAGE": image.get("name"),
        "IMAGE_DIGEST": image.get("digest"),
        "IMAGE_READY": "1" if image.get("ready") else "0",
        "DISK_DEVICE": disk.get("device"),
        "DISK_WIPE": "1" if disk.get("wipe") else ("0" if disk else None),
        "DISK_PARTITIONS": " ".join(parts),
        "OVERLAY_URL": info["overlay_url"],
        "STATE_URL": info["state_url"],
        "SERVER_URL": info["server_url"],
    }
    for kind in ARTIFACT_KINDS:
        entry = arts.get(kind) or {}
        for key in ("url", "sha256", "size", "info_hash"):
            values[f"{kind.upper()}_{key.upper()}"] = entry.get(key)
    return "".join(
        f"CORRAL_{k}={shlex.quote('' if v is None else str(v))}\n" for k, v in values.items()
    )


def who_am_i(ctx: HttpContext, request: web.Request) -> Data:
    caller = identify_request(ctx, request)
    with ctx.corral.store.transaction() as conn:
        return self_info(conn, caller, ctx.server_url)


@routes.get("/api/v1/boot/self")
async def boot_self(request: web.Request) -> web.Response:
    ctx = context_of(request)
    info = await ctx.run(who_am_i, ctx, request)
    if request.query.get("format") == "sh":
        return web.Response(text=shell_lines(info), headers={"Cache-Control": "no-store"})
    return web.json_response(info, headers={"Cache-Control": "no-store"})


# --- state reports --------------------------------------------------------------------------


def parse_report(body: Any) -> tuple[str, Data]:
    """(state, report) from a node's JSON body; unknown keys and bad values are refused."""
    if not isinstance(body, dict):
        raise InventoryError("state report must be a JSON object")
    unknown = sorted(set(body) - {"state", *REPORT_INTS, *REPORT_TEXTS})
    if unknown:
        raise InventoryError(f"unknown key(s) in state report: {', '.join(unknown)}")
    state = body.get("state")
    if not isinstance(state, str):
        raise InventoryError("state report needs 'state' (a string)")
    report: Data = {}
    for key in REPORT_INTS:
        value = body.get(key)
        if value is not None and (type(value) is not int or value < 0):
            raise InventoryError(f"'{key}' must be a non-negative integer, not {value!r}")
        report[key] = value
    for key, limit in REPORT_TEXTS.items():
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise InventoryError(f"'{key}' must be a string")
        report[key] = value[:limit] if value else value
    return state, report


def report_state(ctx: HttpContext, request: web.Request, body: Any) -> tuple[Data, Data | None]:
    state, report = parse_report(body)
    caller = identify_request(ctx, request)
    now = time.time()
    with ctx.corral.store.transaction() as conn:
        info = self_info(conn, caller, ctx.server_url)
        image = info["image"] or {}
        seen: Data = {"ip": caller.ip, "mac": caller.mac, "image": image.get("name")}
        seen["digest"] = image.get("digest")
        recorded = record_state(conn, caller.node, state, now, **seen, **report)
    return recorded.status, recorded.event


@routes.post("/api/v1/boot/self/state")
@routes.post("/api/v1/boot/{name}/state")
async def post_state(request: web.Request) -> web.Response:
    ctx = context_of(request)
    body = await request.json()
    status, event = await ctx.run(report_state, ctx, request, body)
    publish(ctx, event)
    return web.json_response({**status, "changed": event is not None})


# --- overlay --------------------------------------------------------------------------------


def overlay_of(ctx: HttpContext, request: web.Request) -> bytes:
    caller = identify_request(ctx, request)
    return overlay_archive(render_node(ctx.corral, ctx.corral.settings.paths, caller.node))


@routes.get("/api/v1/boot/self/overlay")
@routes.get("/api/v1/boot/{name}/overlay")
async def get_overlay(request: web.Request) -> web.Response:
    ctx = context_of(request)
    data = await ctx.run(overlay_of, ctx, request)
    etag = '"' + hashlib.sha256(data).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": "no-store"}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, content_type="application/gzip", headers=headers)
