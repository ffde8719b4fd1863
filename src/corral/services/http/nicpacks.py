"""A node's NIC pack: the initramfs part with the drivers its NIC needs.

iPXE asks `/nics/{sha256}?pci=VVVV:DDDD`, `sha256` the image's full NIC pack,
the IDs those of the NIC it booted from (`boot.image_boot`). A valid pair that
some driver of the pack matches gets a small pack of that driver and what it
needs (`corral.images.nicpack.NicPacks`, made once, kept under
`$CORRAL_HOME/nic-packs/`); anything else (no IDs: an iPXE without PCI
settings, a NIC not on PCI; IDs no driver matches) gets the full pack, so
every node that booted with all drivers still does.
"""

from __future__ import annotations

import logging

from aiohttp import web

from corral.images.errors import ImageError
from corral.images.nicpack import MAX_QUERY, NicPacks, parse_pci
from corral.services.http.artifacts import count_sent, named_artifact

log = logging.getLogger("corral.http.nicpacks")
routes = web.RouteTableDef()
PACKS = "nic_packs"
STATE_DIR = "nic-packs"


@routes.get("/nics/{sha256}")
async def nic_pack(request: web.Request) -> web.StreamResponse:
    """The pack for `?pci=VVVV:DDDD`, or the full pack (module docstring)."""
    ctx, name, full = await named_artifact(request, "NIC pack")
    query = request.query.get("pci", "")[: MAX_QUERY + 1]
    ids = parse_pci(query)
    found = None
    if ids is not None:
        packs: NicPacks | None = ctx.extra.get(PACKS)
        if packs is None:  # made once per server, not per request
            packs = ctx.extra[PACKS] = NicPacks(ctx.corral.settings.paths.home / STATE_DIR)
        try:
            found = await ctx.run(packs.pack, full, *ids)
        except ImageError as exc:
            raise web.HTTPNotFound(text=f"{exc}\n") from None
    path = full if found is None else found[0]
    what = "all NIC drivers" if found is None else " ".join(found[1])
    log.info("NIC pack for pci=%r to %s: %s", query[:MAX_QUERY], request.remote, what)
    count_sent(ctx.extra.setdefault("artifact_bytes", {}), name, request, path.stat().st_size)
    return web.FileResponse(path, chunk_size=1 << 20, headers={"Cache-Control": "no-store"})
