"""Artifacts (kernels, initramfs, packed images, torrents) by content address.

Only names of the form `<sha256>[.ext]` are served, straight from the artifact
directory: nothing outside it can be named, and a symlink placed there that
leads out of it is refused like a missing file (`file_in_root`, which the
firmware files under the TFTP root go through as well). aiohttp's
FileResponse gives Range, ETag/If-None-Match and sendfile (zero-copy) for free.
An artifact this server lacks is fetched from a peer server by its digest
(`peerfetch`), so every server serves every artifact.

`/torrents/{sha256}` serves an image's torrent with every live server's
tracker and web seed (`images.torrent.for_servers`): the info dictionary, so
the info-hash the image signature covers, is the same whoever serves it.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from aiohttp import web

from corral.images.torrent import TorrentError, for_servers
from corral.services.http.context import HttpContext, context_of
from corral.services.http.peerfetch import PEER_HEADER, fetch_missing

routes = web.RouteTableDef()
ARTIFACT_NAME = re.compile(r"^[0-9a-f]{64}(\.[a-z0-9]{1,16})*$")
DIGEST = re.compile(r"^[0-9a-f]{64}$")
MAX_TORRENT = 4 << 20  # a torrent of a large image is a few hundred KiB


@routes.get("/artifacts/{name}")
async def artifact(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if not ARTIFACT_NAME.match(name):
        raise web.HTTPNotFound(text="no such artifact\n")
    ctx = context_of(request)
    path = await local_or_peer(ctx, name, from_peer=PEER_HEADER in request.headers)
    if path is None:
        raise web.HTTPNotFound(text="no such artifact\n")
    count_sent(ctx.extra.setdefault("artifact_bytes", {}), name, request, path.stat().st_size)
    return web.FileResponse(path, chunk_size=1 << 20)


async def local_or_peer(ctx: HttpContext, name: str, from_peer: bool = False) -> Path | None:
    """Artifact `name` on this server's disk, else fetched from a peer (not for a peer)."""
    path = file_in_root(ctx.corral.settings.paths.artifacts, name)
    if path is None and not from_peer and DIGEST.match(name):
        await fetch_missing(ctx, name)
        path = file_in_root(ctx.corral.settings.paths.artifacts, name)
    return path


async def named_artifact(request: web.Request, what: str) -> tuple[HttpContext, str, Path]:
    """The artifact a route's `{sha256}` names (here or fetched from a peer), or a 404
    that says `no such WHAT`: a name that is not a digest is never looked up."""
    name = request.match_info["sha256"]
    if not DIGEST.match(name):
        raise web.HTTPNotFound(text=f"no such {what}\n")
    ctx = context_of(request)
    path = await local_or_peer(ctx, name)
    if path is None:
        raise web.HTTPNotFound(text=f"no such {what}\n")
    return ctx, name, path


@routes.get("/torrents/{sha256}")
async def torrent(request: web.Request) -> web.Response:
    """The torrent stored as artifact `sha256`, announcing to every live server."""
    ctx, _, path = await named_artifact(request, "torrent")
    if path.stat().st_size > MAX_TORRENT:
        raise web.HTTPNotFound(text="no such torrent\n")
    servers = ctx.servers or []
    bases = [s.url for s in servers] or [ctx.server_url]
    try:
        body = await ctx.run(for_servers, path.read_bytes(), bases)
    except TorrentError:
        raise web.HTTPNotFound(text="no such torrent\n") from None
    headers = {"Cache-Control": "no-store"}
    return web.Response(body=body, content_type="application/x-bittorrent", headers=headers)


def file_in_root(root: Path, relative: str) -> Path | None:
    """The real path of regular file `root/relative`, or None if it is not one or is outside.

    Symlinks are followed only as long as they stay inside `root` (as TFTP does):
    one placed in the store that points at /etc/shadow serves nothing.
    """
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(real_root / relative))
    if real_root not in real.parents:
        return None
    try:
        mode = os.stat(real, follow_symlinks=False).st_mode
    except OSError:
        return None
    return real if stat.S_ISREG(mode) else None


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
