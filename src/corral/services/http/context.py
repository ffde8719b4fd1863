"""What every HTTP handler may use, stored once on the aiohttp application."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from corral.actions import LocalActions
from corral.app import Corral
from corral.store.servers import ServerRecord

T = TypeVar("T")


@dataclass
class HttpContext:
    corral: Corral
    token: str
    server_url: str
    tftp_root: Path
    extra: dict[str, Any] = field(default_factory=dict)
    # https://... when `corral serve` serves TLS: what nodes and the CLI use for the API;
    # server_url (plain HTTP) stays for what firmware fetches and signed artifacts
    api_url: str = ""
    # every live server on the database, this one too (by URL), refreshed by `corral serve`'s
    # heartbeat: what nodes are told to fall back to, and where missing artifacts come from
    servers: list[ServerRecord] = field(default_factory=list)

    @property
    def node_url(self) -> str:
        """The URL the initramfs and the node agent call the API at (HTTPS when served)."""
        return self.api_url or self.server_url

    @property
    def peers(self) -> list[ServerRecord]:
        """The other live servers of the cluster."""
        return [s for s in self.servers if s.url != self.server_url]

    @property
    def http_bases(self) -> list[str]:
        """Every server's plain-HTTP URL, this one first: where artifacts are."""
        return [self.server_url, *(p.url for p in self.peers)]

    @property
    def api_bases(self) -> list[str]:
        """Every server's API URL, this one first, in the order of `http_bases`."""
        return [self.node_url, *(p.api_url for p in self.peers)]

    @property
    def actions(self) -> LocalActions:
        return LocalActions(self.corral)

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking database work off the event loop."""
        return await asyncio.to_thread(func, *args, **kwargs)


CONTEXT = web.AppKey("corral", HttpContext)


def context_of(request: web.Request) -> HttpContext:
    return request.app[CONTEXT]
