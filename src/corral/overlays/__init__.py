"""Per-node overlays: template trees rendered with one node's context.

A node's initramfs fetches its overlay (one .tar.gz of rendered files) and
unpacks it onto the new root, so every node boots the same image and still
comes up as itself: hostname, /etc/hosts, network configuration, SSH host
keys, root's authorized_keys, fstab. Rendering happens on request, for one
node, and costs one node's worth of work plus a cached hosts list.

The HTTP server serves `/api/v1/boot/self/overlay` with

    rendered = render_node(inventory, paths, node_name)
    body = overlay_archive(rendered)

or keeps an `OverlayRenderer(paths)` and calls its `render(inventory, node)`.
"""

from __future__ import annotations

from corral.overlays.archive import overlay_archive
from corral.overlays.errors import OverlayError, OverlayNotFound, TemplateFailure
from corral.overlays.render import OverlayRenderer, RenderedFile, RenderedOverlay, render_node
from corral.overlays.sources import DEFAULT_OVERLAYS, OVERLAY_SETS

__all__ = [
    "DEFAULT_OVERLAYS",
    "OVERLAY_SETS",
    "OverlayError",
    "OverlayNotFound",
    "OverlayRenderer",
    "RenderedFile",
    "RenderedOverlay",
    "TemplateFailure",
    "overlay_archive",
    "render_node",
]
