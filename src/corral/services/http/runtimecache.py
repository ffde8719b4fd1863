"""Answering an agent's runtime-overlay poll without rendering, when nothing changed.

Every agent polls every 20 s; rendering a node's runtime overlays costs a
whole-inventory read plus the hosts list (about 0.1 s at 1,000 nodes), so
rendering on every poll would cost the server several cores for nothing. This
cache keeps one snapshot of the inventory and the agents' facts, re-read at
most every `ttl` seconds and replaced only when its content differs, and per
node the digest of the document last rendered from that snapshot (and from the
overlay files as they were: their sizes and modification times). A poll whose
If-None-Match carries that digest gets its 304 without a render; only digests
are kept, so memory stays a few bytes per node.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from corral.app import Corral
from corral.config import Paths
from corral.inventory.index import Inventory
from corral.overlays import sources
from corral.overlays.adminkey import public_key_path
from corral.overlays.runtime import RuntimeDocument, runtime_document, runtime_overlays


def inputs_signature(paths: Paths, sources_: list[sources.OverlaySource]) -> Hashable:
    """What a render reads besides the inventory: the overlay files, and the admin's public
    key (`corral admin ssh-key new|set` changes root's authorized_keys on every node)."""
    try:
        stat = public_key_path(paths).stat()
        key: tuple[int, int] | None = (stat.st_size, stat.st_mtime_ns)
    except FileNotFoundError:
        key = None
    return (tree_signature(sources_), key)


@dataclass(frozen=True)
class Snapshot:
    inventory: Inventory
    reported: dict[str, dict[str, Any]]


def tree_signature(sources_: list[sources.OverlaySource]) -> Hashable:
    """The overlay files as they are now: a template edit changes it."""
    out = []
    for source in sources_:
        if source.root is None:
            continue
        for path in sorted(source.root.rglob("*")):
            stat = path.stat()
            out.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(out)


class RuntimeCache:
    def __init__(self, ttl: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._loaded = 0.0
        self._digests: dict[str, tuple[Hashable, str]] = {}
        self.renders = 0  # for tests and metrics

    def snapshot(self, app: Corral) -> Snapshot:
        """The inventory and facts, read at most every `ttl` seconds."""
        now = self.clock()
        with self._lock:
            if self._snapshot is not None and now - self._loaded < self.ttl:
                return self._snapshot
        fresh = Snapshot(app.read(), app.node_facts())
        with self._lock:
            if self._snapshot != fresh:
                self._snapshot = fresh
                self._digests.clear()
            self._loaded = now
            return self._snapshot

    def unchanged(self, app: Corral, node: str, etag: str) -> bool:
        """Whether `etag` is the digest of what `node` would be sent now (no render)."""
        snap = self.snapshot(app)
        paths = app.settings.paths
        files = inputs_signature(paths, runtime_overlays(paths, snap.inventory, node))
        with self._lock:
            known = self._digests.get(node)
            return self._snapshot is snap and known == (files, etag.strip('"'))

    def document(self, app: Corral, node: str) -> RuntimeDocument:
        """Render `node`'s runtime overlays and remember the digest."""
        snap = self.snapshot(app)
        paths = app.settings.paths
        files = inputs_signature(paths, runtime_overlays(paths, snap.inventory, node))
        document = runtime_document(paths, snap.inventory, node, snap.reported)
        with self._lock:
            self.renders += 1
            if self._snapshot is snap:
                self._digests[node] = (files, document.digest)
        return document
