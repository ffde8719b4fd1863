"""A missing artifact, fetched by its digest from a peer server.

Several servers on one database share the image records but not their disks:
an image packed on one server exists only there until another fetches it.
A server asked for an artifact it lacks (or seeding an image it lacks) gets
it from a live peer (`ctx.peers`, from the `servers` table), checks its
sha256 and size against the image record, and keeps it under its content
address (written to a temporary name, then renamed: a half-fetched file is
never served). Only digests an image record names are fetched, so a request
cannot make the server download anything else; a peer's own request carries
`PEER_HEADER` and is never passed on, so two servers lacking a file do not
ask each other in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from pathlib import Path

import aiohttp

from corral.images import catalog
from corral.services.http.context import HttpContext
from corral.store.servers import ServerRecord

log = logging.getLogger("corral.http.peerfetch")
PEER_HEADER = "X-Corral-Peer"
CHUNK = 1 << 20
CONNECT_TIMEOUT = 5.0
STALL_TIMEOUT = 60.0


def expected_size(ctx: HttpContext, sha256: str) -> int | None:
    """The size of artifact `sha256` if an image record names it, else None."""
    with ctx.corral.store.reading() as conn:
        images = catalog.all_images(conn)
    for image in images:
        for file in image.artifacts.files() if image.artifacts else []:
            if file.sha256 == sha256:
                return file.size
    return None


async def fetch_missing(ctx: HttpContext, sha256: str) -> Path | None:
    """The local path of artifact `sha256`, fetched from a peer if needed; None if none has it."""
    path = ctx.corral.settings.paths.artifacts / sha256
    peers = ctx.peers
    if not peers:
        return None
    # only digests an image names get a lock: a stream of made-up ones leaves nothing behind
    size = await ctx.run(expected_size, ctx, sha256)
    if size is None:
        return None
    locks: dict[str, asyncio.Lock] = ctx.extra.setdefault("peer_fetch_locks", {})
    lock = locks.setdefault(sha256, asyncio.Lock())
    async with lock:  # one fetch per digest; the others wait for it and find the file
        if path.is_file():
            return path
        for peer in peers:
            if await _fetch_from(peer, sha256, size, path):
                log.info("artifact %s (%d bytes) fetched from %s", sha256, size, peer.url)
                return path
    return None


async def _fetch_from(peer: ServerRecord, sha256: str, size: int, path: Path) -> bool:
    url = f"{peer.url}/artifacts/{sha256}"
    timeout = aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT, sock_read=STALL_TIMEOUT)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{sha256}.peer-{os.getpid()}"
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(url, headers={PEER_HEADER: "1"}) as response,
        ):
            if response.status != 200:
                log.info("peer %s has no artifact %s (%d)", peer.url, sha256, response.status)
                return False
            got = await _stream_to(response, tmp, size)
        if got != sha256:
            log.warning("peer %s sent artifact %s with sha256 %s: refused", peer.url, sha256, got)
            return False
        tmp.rename(path)
        return True
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.warning("could not fetch artifact %s from %s: %s", sha256, peer.url, exc)
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


async def _stream_to(response: aiohttp.ClientResponse, tmp: Path, size: int) -> str | None:
    """Write the body to `tmp` (0600 until renamed); its sha256, or None if not `size` bytes."""
    digest = hashlib.sha256()
    written = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        async for block in response.content.iter_chunked(CHUNK):
            written += len(block)
            if written > size:
                return None
            digest.update(block)
            await asyncio.to_thread(out.write, block)
    os.chmod(tmp, 0o644)
    return digest.hexdigest() if written == size else None
