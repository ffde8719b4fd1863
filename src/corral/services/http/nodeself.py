"""What we tell the node: who it is, which image, where each artifact is.

    GET /api/v1/boot/self[?mac=M][&format=sh]    (node credential; see nodeauth)

`format=sh` answers the same as `CORRAL_X='value'` lines for busybox sh. With
several servers, `servers` lists every live server's API URL (this one first)
and `http_servers` their plain-HTTP URLs in the same order: the initramfs tries
the same path on the next one when a server fails. The torrent's URL is the
`/torrents/` route, which lists every server's tracker. The
image is read through the typed catalog (`images.catalog`), the one reader of
the image record; the firmware's boot script (`boot.py`) reads it the same way.
"""

from __future__ import annotations

import shlex
from typing import Any

from aiohttp import web
from sqlalchemy.engine import Connection

from corral.images import catalog
from corral.images.records import ArtifactFile, Artifacts, Torrent, root_bytes
from corral.services.http.context import HttpContext, context_of
from corral.services.http.nodeauth import Caller, node_caller
from corral.store.bootplan import boot_plan
from corral.store.inventory import load_node_view
from corral.store.status import get_status

routes = web.RouteTableDef()
Data = dict[str, Any]
ARTIFACT_KINDS = ("image", "torrent", "kernel", "initramfs", "disk_initrd")
SHELL_FIELDS = ("url", "sha256", "size", "info_hash")


def artifact_url(server_url: str, sha256: str) -> str:
    return f"{server_url}/artifacts/{sha256}"


def artifact_entry(file: ArtifactFile, server_url: str) -> Data:
    """One artifact as the node needs it: where to fetch it, and how to check it."""
    entry: Data = {"sha256": file.sha256, "size": file.size, "format": file.format}
    if isinstance(file, Torrent):
        entry.update(
            info_hash=file.info_hash,
            piece_size=file.piece_size,
            tracker=file.tracker,
            web_seed=file.web_seed,
        )
        entry["url"] = f"{server_url}/torrents/{file.sha256}"  # announces to every server
    else:
        entry["url"] = artifact_url(server_url, file.sha256)
    return entry


def packed(conn: Connection, image: str | None) -> Artifacts | None:
    """The artifacts of `image` if it exists and is packed."""
    record = catalog.find(conn, image) if image else None
    return record.artifacts if record else None


def image_info(conn: Connection, name: str | None, server_url: str) -> Data | None:
    if name is None:
        return None
    record = catalog.find(conn, name)
    arts = record.artifacts if record else None
    if arts is None:
        digest = record.digest if record else None
        return {"name": name, "digest": digest, "ready": False, "artifacts": {}}
    files = {
        kind: artifact_entry(file, server_url)
        for kind in ARTIFACT_KINDS
        if (file := getattr(arts, kind)) is not None
    }
    info = {
        "name": name,
        "digest": arts.digest,
        "ready": True,
        "artifacts": files,
        "signature": arts.signature,
        "kernel_version": arts.kernel_version,
    }
    assert record is not None
    info["root_bytes"] = root_bytes(record.size, record.files)  # the stateless root's tmpfs
    info["ram_bytes"] = record.ram_needed
    return info


def self_info(
    conn: Connection,
    caller: Caller,
    server_url: str,
    api_url: str = "",
    servers: tuple[list[str], list[str]] = ([], []),
) -> Data:
    """Who the node is; artifacts at `server_url` (plain HTTP: signed), the API at `api_url`.

    `servers`: every server's API URLs and plain-HTTP URLs, this one first (failover).
    """
    view = load_node_view(conn, caller.node)
    assert view is not None  # node_caller found its credential joined to the node
    eff = view.effective(caller.node)
    settings = eff.settings
    network = view.primary_network(eff.node)
    boot = boot_plan(conn, caller.node).override or settings.boot or "stateless"
    disk = settings.disk if boot == "stateful" else None
    status = get_status(conn, caller.node)
    base = f"{api_url or server_url}/api/v1/boot/self"
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
        "server_url": api_url or server_url,
        "servers": servers[0] or [api_url or server_url],
        "http_servers": servers[1] or [server_url],
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
        "IMAGE_ROOT_BYTES": image.get("root_bytes"),
        "IMAGE_RAM_BYTES": image.get("ram_bytes"),
        "IMAGE_SIGNATURE": image.get("signature"),
        "IMAGE_KERNEL_VERSION": image.get("kernel_version"),
        "DISK_DEVICE": disk.get("device"),
        "DISK_WIPE": None if not disk else {True: "1", False: "0"}.get(disk["wipe"], "auto"),
        "DISK_PARTITIONS": " ".join(parts),
        "OVERLAY_URL": info["overlay_url"],
        "STATE_URL": info["state_url"],
        "SERVER_URL": info["server_url"],
        "SERVERS": " ".join(info["servers"]),
        "HTTP_SERVERS": " ".join(info["http_servers"]),
    }
    for kind in ARTIFACT_KINDS:
        entry = arts.get(kind) or {}
        for key in SHELL_FIELDS:
            values[f"{kind.upper()}_{key.upper()}"] = entry.get(key)
    return "".join(
        f"CORRAL_{k}={shlex.quote('' if v is None else str(v))}\n" for k, v in values.items()
    )


def who_am_i(ctx: HttpContext, caller: Caller) -> Data:
    with ctx.corral.store.transaction() as conn:
        servers = (ctx.api_bases, ctx.http_bases)
        return self_info(conn, caller, ctx.server_url, ctx.node_url, servers)


@routes.get("/api/v1/boot/self")
async def boot_self(request: web.Request) -> web.Response:
    caller = await node_caller(request)
    ctx = context_of(request)
    info = await ctx.run(who_am_i, ctx, caller)
    if request.query.get("format") == "sh":
        return web.Response(text=shell_lines(info), headers={"Cache-Control": "no-store"})
    return web.json_response(info, headers={"Cache-Control": "no-store"})
