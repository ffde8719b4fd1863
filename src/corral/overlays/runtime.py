"""Runtime overlays: the part of a node's overlays that its agent keeps current.

An overlay is runtime when its `corral-overlay.toml` says `runtime = true`
(`corral.overlays.sources.meta`); the built-in `hosts` and `authorized-keys`
are. A node's runtime overlays are the runtime ones among its own overlays
(sets expanded), rendered exactly as at boot. The agent receives them as one
JSON document, grouped by overlay with each overlay's `reload` command, and
the document's digest is its ETag: an unchanged overlay costs the agent one
request and a 304.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from corral.config import Paths
from corral.inventory.index import Inventory
from corral.overlays import sources
from corral.overlays.cluster import ReportedFacts
from corral.overlays.render import renderer_for


@dataclass(frozen=True)
class RuntimeDocument:
    """What `GET /api/v1/boot/self/runtime` answers, and its digest."""

    body: bytes
    digest: str

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


def runtime_overlays(paths: Paths, inv: Inventory, node: str) -> list[sources.OverlaySource]:
    """The node's overlays (sets expanded) whose metadata says `runtime = true`."""
    renderer = renderer_for(paths)
    chosen = sources.resolve(paths, renderer.node_overlays(inv, node))
    return [s for s in chosen if sources.meta(s).runtime]


def runtime_document(
    paths: Paths, inv: Inventory, node: str, reported: ReportedFacts | None = None
) -> RuntimeDocument:
    """The node's runtime overlays rendered, as canonical JSON with its sha256."""
    overlays: list[dict[str, Any]] = []
    chosen = runtime_overlays(paths, inv, node)
    if chosen:
        names = [s.name for s in chosen]
        rendered = renderer_for(paths).render(inv, node, names, reported)
        for source in chosen:
            files = [
                {
                    "path": path,
                    "mode": item.mode,
                    "sha256": hashlib.sha256(item.data).hexdigest(),
                    "data": base64.b64encode(item.data).decode(),
                    **({"owner": item.owner} if item.owner else {}),
                }
                for path, item in sorted(rendered.files.items())
                if rendered.origins[path] == source.name
            ]
            reload = sources.meta(source).reload
            overlays.append({"name": source.name, "reload": reload, "files": files})
    body = json.dumps({"node": node, "overlays": overlays}, sort_keys=True).encode()
    return RuntimeDocument(body, hashlib.sha256(body).hexdigest())
